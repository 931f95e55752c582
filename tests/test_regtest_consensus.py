"""Bitcoin Core's consensus engine (py-bitcoinkernel) behind the regtest node: what Core refuses, the node refuses
with Core's reason; invalidateblock/reconsiderblock reorganise the chain; BIP125 replacements in the mempool."""

from __future__ import annotations

import pytest

from regtest.address import address_to_script
from regtest.blocks import BlockError, grind
from regtest.chain import Chain
from regtest.serialize import Block, BlockHeader, Tx, merkle_root
from tests.regtest_fixtures import COINBASE_VALUE, Key, Utxo, coinbase_utxo, sign_tx
from tests.test_regtest_node import FEE, expect_error, funded_chain, rpc_of

RBF = 0xFFFFFFFD  # nSequence signalling BIP125


def tampered(block: Block, change) -> Block:
    """`block` after `change(block)`, with its merkle root and proof of work made right again."""
    change(block)
    block.header = grind(
        BlockHeader(**{**vars(block.header), "merkle_root": merkle_root([tx.hash for tx in block.txs]), "nonce": 0})
    )
    return block


def break_signature(raw: str) -> Tx:
    tx = Tx.from_hex(raw)
    sig = bytearray(tx.inputs[0].witness[0])
    sig[10] ^= 1
    tx.inputs[0].witness[0] = bytes(sig)
    return tx


# ---- blocks: Core decides ----


def test_core_refuses_blocks_with_its_own_reasons(electrum_regtest):
    key = Key.from_int(201)
    chain, hashes = funded_chain(key)
    rpc = rpc_of(chain)
    script = address_to_script(key.address)
    greedy = tampered(chain.build_block(script), lambda b: setattr(b.txs[0].outputs[0], "value", COINBASE_VALUE + 1))
    with pytest.raises(BlockError) as err:
        chain.connect_block(greedy)
    assert str(err.value).startswith("bad-cb-amount, coinbase pays too much")  # Core's reason and detail
    assert rpc("submitblock", greedy.serialize().hex()) == "duplicate-invalid"  # Core remembers it failed

    # a block spending a coinbase with a broken signature: the old node connected it, Core does not
    coin = coinbase_utxo(rpc, hashes[0], key)
    raw, _ = sign_tx([coin], [(Key.from_int(202).address, COINBASE_VALUE - FEE)])
    forged = chain.build_block(script, txs=[break_signature(raw)])
    reason = rpc("submitblock", forged.serialize().hex())
    assert reason.startswith("block-script-verify-flag-failed (Script evaluated without error but finished with")
    assert chain.height == 101 and rpc("getbestblockhash") == hashes[-1]
    assert rpc("submitblock", chain.build_block(script).serialize().hex()) is None
    assert chain.height == 102


def test_bitcoin_cash_mode_has_no_kernel_and_keeps_its_own_checks(electrum_regtest):
    chain = Chain(segwit=False)
    assert chain.kernel is None
    key = Key.from_int(203, "p2pkh")
    rpc_of(chain)("generatetoaddress", 2, key.address)
    greedy = tampered(
        chain.build_block(address_to_script(key.address)),
        lambda b: setattr(b.txs[0].outputs[0], "value", COINBASE_VALUE + 1),
    )
    with pytest.raises(BlockError, match=r"^bad-cb-amount$"):
        chain.connect_block(greedy)


# ---- mempool: Core verifies every input ----


def test_mempool_refuses_spends_core_refuses(electrum_regtest):
    alice, bob = Key.from_int(211), Key.from_int(212)
    chain, hashes = funded_chain(alice)
    rpc = rpc_of(chain)
    coin = coinbase_utxo(rpc, hashes[0], alice)
    raw, txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
    unsigned = Tx.from_hex(raw)
    unsigned.inputs[0].witness = []
    expect_error(
        rpc, -26, "mandatory-script-verify-flag-failed (Witness program hash mismatch)", "sendrawtransaction",
        unsigned.hex(),
    )  # fmt: skip
    expect_error(
        rpc, -26, "mandatory-script-verify-flag-failed (Script evaluated without error but finished with a false/empty",
        "sendrawtransaction", break_signature(raw).hex(),
    )  # fmt: skip
    # signed for another amount (BIP143 commits to it): Core's segwit check catches it
    wrong_amount, _ = sign_tx([Utxo(coin.txid, 0, coin.value - 1, alice)], [(bob.address, COINBASE_VALUE - FEE)])
    expect_error(rpc, -26, "mandatory-script-verify-flag-failed", "sendrawtransaction", wrong_amount)
    # the key of another address
    stolen, _ = sign_tx([Utxo(coin.txid, 0, coin.value, bob)], [(bob.address, COINBASE_VALUE - FEE)])
    expect_error(rpc, -26, "mandatory-script-verify-flag-failed", "sendrawtransaction", stolen)
    accept = rpc("testmempoolaccept", [unsigned.hex()])[0]
    assert accept["reject-reason"] == "mandatory-script-verify-flag-failed (Witness program hash mismatch)"
    assert rpc("getrawmempool") == []
    assert rpc("sendrawtransaction", raw) == txid
    # a child of an unconfirmed parent, unsigned: Core names the error with the parent in the probe block
    child, _ = sign_tx([Utxo(txid, 0, COINBASE_VALUE - FEE, bob)], [(alice.address, COINBASE_VALUE - 2 * FEE)])
    expect_error(rpc, -26, "mandatory-script-verify-flag-failed (Script evaluated", "sendrawtransaction",
                 break_signature(child).hex())  # fmt: skip
    assert rpc("getrawmempool") == [txid]
    assert rpc("getblock", rpc("generatetoaddress", 1, alice.address)[0], 1)["tx"][1:] == [txid]


# ---- BIP125 replace-by-fee ----


def test_replacement_follows_bip125(electrum_regtest):
    alice, bob, carol = Key.from_int(221), Key.from_int(222), Key.from_int(223)
    chain, hashes = funded_chain(alice, 104)
    rpc = rpc_of(chain)
    coin = coinbase_utxo(rpc, hashes[0], alice)
    first, first_txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)], sequence=RBF)
    child, child_txid = sign_tx(
        [Utxo(first_txid, 0, COINBASE_VALUE - FEE, bob)], [(carol.address, COINBASE_VALUE - 2 * FEE)]
    )
    rpc("sendrawtransaction", first)
    rpc("sendrawtransaction", child)
    cheap, _ = sign_tx([coin], [(carol.address, COINBASE_VALUE - FEE - 1)], sequence=RBF)
    expect_error(rpc, -26, "insufficient fee, rejecting replacement", "sendrawtransaction", cheap)
    not_enough, _ = sign_tx([coin], [(carol.address, COINBASE_VALUE - 2 * FEE - 1)])  # pays exactly both fees
    expect_error(rpc, -26, "not enough additional fees to relay", "sendrawtransaction", not_enough)
    unconfirmed_extra, _ = sign_tx(
        [coin, Utxo(child_txid, 0, COINBASE_VALUE - 2 * FEE, carol)], [(carol.address, 2 * COINBASE_VALUE - 5 * FEE)]
    )
    expect_error(rpc, -26, "bad-txns-spends-conflicting-tx", "sendrawtransaction", unconfirmed_extra)
    replacement, replacement_txid = sign_tx([coin], [(carol.address, COINBASE_VALUE - 3 * FEE)])
    assert rpc("sendrawtransaction", replacement) == replacement_txid
    assert rpc("getrawmempool") == [replacement_txid]  # the original and its child are gone

    # no signal: refused as before BIP125
    final_coin = coinbase_utxo(rpc, hashes[1], alice)
    pinned, pinned_txid = sign_tx([final_coin], [(bob.address, COINBASE_VALUE - FEE)])
    rpc("sendrawtransaction", pinned)
    richer, _ = sign_tx([final_coin], [(carol.address, COINBASE_VALUE - 5 * FEE)])
    expect_error(rpc, -26, "txn-mempool-conflict", "sendrawtransaction", richer)

    # a replacement may not add an unconfirmed input its conflicts did not spend
    third = coinbase_utxo(rpc, hashes[2], alice)
    signalling, _ = sign_tx([third], [(bob.address, COINBASE_VALUE - FEE)], sequence=RBF)
    rpc("sendrawtransaction", signalling)
    adds_unconfirmed, _ = sign_tx(
        [third, Utxo(pinned_txid, 0, COINBASE_VALUE - FEE, bob)], [(carol.address, 2 * COINBASE_VALUE - 10 * FEE)]
    )
    expect_error(rpc, -26, "replacement-adds-unconfirmed", "sendrawtransaction", adds_unconfirmed)


# ---- reorganisations ----


def test_invalidate_and_reconsider_reorganise_like_core(electrum_regtest, tmp_path):
    alice, bob, carol = Key.from_int(231), Key.from_int(232), Key.from_int(233)
    chain, hashes = funded_chain(alice, datadir=tmp_path)
    rpc = rpc_of(chain)
    coin = coinbase_utxo(rpc, hashes[0], alice)
    paid, paid_txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
    rpc("sendrawtransaction", paid)
    old_branch = rpc("generatetoaddress", 2, alice.address)
    assert rpc("getrawtransaction", paid_txid, 1)["confirmations"] == 2

    rpc("invalidateblock", old_branch[0])
    assert rpc("getblockcount") == 101 and rpc("getbestblockhash") == hashes[-1]
    assert rpc("getrawmempool") == [paid_txid]  # back from the disconnected block, as in Core
    assert rpc("getblockheader", old_branch[0])["confirmations"] == -1

    # the new branch confirms a conflicting payment: the mempool copy is evicted
    double, double_txid = sign_tx([coin], [(carol.address, COINBASE_VALUE - FEE)])
    other = Chain()
    for block in chain.blocks[1:]:
        other.connect_block(block)
    rpc_of(other)("sendrawtransaction", double)
    conflicting_block = other.build_block(address_to_script(carol.address))
    assert rpc("submitblock", conflicting_block.serialize().hex()) is None
    new_branch = [conflicting_block.hash_hex, *rpc("generatetoaddress", 2, carol.address)]
    assert rpc("getrawmempool") == []
    assert rpc("getrawtransaction", double_txid, 1)["blockhash"] == new_branch[0]
    with pytest.raises(Exception, match="No such mempool or blockchain transaction"):
        rpc("getrawtransaction", paid_txid)

    # reconsider: the old branch (2 blocks) has less work than the new one (3): nothing moves
    rpc("reconsiderblock", old_branch[0])
    assert rpc("getbestblockhash") == new_branch[-1]

    # a restart keeps the branch choice and the marks
    rpc("invalidateblock", new_branch[0])
    assert rpc("getbestblockhash") == old_branch[-1] and rpc("getrawtransaction", paid_txid, 1)["confirmations"] == 2
    assert rpc("getrawmempool") == []  # the double spend conflicts with the re-confirmed payment
    again = Chain(tmp_path)
    assert again.tip.hash_hex == old_branch[-1] and again.utxos == chain.utxos
    assert again.invalid == chain.invalid and len(again.known) == len(chain.known)


def test_a_longer_side_branch_submitted_wins(electrum_regtest):
    alice = Key.from_int(241)
    chain, _ = funded_chain(alice, 3)
    side = Chain()
    for block in chain.blocks[1:3]:
        side.connect_block(block)
    script = address_to_script(Key.from_int(242).address)
    branch = [side.mine(script, now=side.tip.header.time + 1 + n) for n in range(2)]  # forks below the tip
    assert rpc_of(chain)("submitblock", branch[0].serialize().hex()) is None
    assert chain.tip.hash_hex == chain.blocks[3].hash_hex and chain.height == 3  # equal work: first seen stays
    assert rpc_of(chain)("submitblock", branch[1].serialize().hex()) is None
    assert chain.tip.hash == branch[1].hash and chain.height == 4
    assert rpc_of(chain)("submitblock", branch[1].serialize().hex()) == "duplicate"


async def test_electrumx_follows_invalidateblock_to_the_new_branch(regtest_stack, electrum_regtest):
    from regtest.electrum_client import ElectrumClient, scripthash

    alice, bob, carol = Key.from_int(251), Key.from_int(252), Key.from_int(253)
    hashes = await regtest_stack.amine(101, alice.address)
    coin = coinbase_utxo(regtest_stack.rpc, hashes[0], alice)
    raw, txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
    await regtest_stack.arpc("sendrawtransaction", raw)
    confirmed = await regtest_stack.amine(1, alice.address)
    async with ElectrumClient() as client:
        await client.connect("127.0.0.1", regtest_stack.electrumx.port)
        bob_sh = scripthash(address_to_script(bob.address))
        history = await client.request("blockchain.scripthash.get_history", bob_sh)
        assert history == [{"tx_hash": txid, "height": 102}]
        await regtest_stack.arpc("invalidateblock", confirmed[0])
        assert await regtest_stack.arpc("getrawmempool") == [txid]
        double, _ = sign_tx([coin], [(carol.address, COINBASE_VALUE - 2 * FEE)], sequence=RBF)
        with pytest.raises(Exception, match="txn-mempool-conflict"):  # the payment does not signal BIP125
            await regtest_stack.arpc("sendrawtransaction", double)
        new_tip = (await regtest_stack.amine(2, carol.address))[-1]  # mines the payment again, at 102
        tip = await client.request("blockchain.headers.subscribe")
        assert tip["height"] == 103 and await regtest_stack.arpc("getbestblockhash") == new_tip
        history = await client.request("blockchain.scripthash.get_history", bob_sh)
        assert history == [{"tx_hash": txid, "height": 102}]
        header = await client.request("blockchain.block.header", 102)
        assert header != (await regtest_stack.arpc("getblockheader", confirmed[0], False))


def test_taproot_spends_are_verified_with_every_spent_output(electrum_regtest):
    from regtest.serialize import TxIn, TxOut
    from tests.taproot import TaprootKey, sign_taproot_input

    owner, payee = TaprootKey.from_int(261), Key.from_int(262)
    chain, _ = funded_chain(Key.from_int(263))
    rpc = rpc_of(chain)
    rpc("generatetoaddress", 2, owner.address)  # the node decodes bech32m: coinbases to a p2tr output
    coinbases = [chain.blocks[h].txs[0] for h in (102, 103)]
    assert all(cb.outputs[0].script == owner.script for cb in coinbases)
    rpc("generatetoaddress", 100, payee.address)
    spent = [(cb.outputs[0].value, cb.outputs[0].script) for cb in coinbases]

    def spend(amounts: list[tuple[int, bytes]]) -> Tx:
        tx = Tx(2, [TxIn(cb.hash, 0) for cb in coinbases], [TxOut(2 * COINBASE_VALUE - FEE, owner.script)])
        for index in range(2):
            sign_taproot_input(tx, index, owner, amounts)
        return tx

    # BIP341 commits to every input's amount: a signature over a wrong amount of the *other* input fails
    lied = spend([spent[0], (spent[1][0] - 1, spent[1][1])])
    expect_error(rpc, -26, "mandatory-script-verify-flag-failed (Invalid Schnorr signature)", "sendrawtransaction",
                 lied.hex())  # fmt: skip
    good = spend(spent)
    assert rpc("sendrawtransaction", good.hex()) == good.txid
    assert rpc("getblock", rpc("generatetoaddress", 1, payee.address)[0], 1)["tx"][1:] == [good.txid]


def test_a_chain_kept_from_before_core_loses_the_blocks_core_refuses(electrum_regtest, tmp_path):
    alice = Key.from_int(271)
    old = Chain(tmp_path, core=False)  # the node's own checks only: what the node was before the kernel
    hashes = rpc_of(old)("generatetoaddress", 101, alice.address)
    raw, _ = sign_tx([coinbase_utxo(rpc_of(old), hashes[0], alice)], [(alice.address, COINBASE_VALUE - FEE)])
    unsigned = Tx.from_hex(raw)
    unsigned.inputs[0].witness = []
    rpc_of(old)("sendrawtransaction", unsigned.hex())  # let through: no scripts checked
    forged = rpc_of(old)("generatetoaddress", 2, alice.address)
    assert old.height == 103
    replayed = Chain(tmp_path)
    assert replayed.height == 101 and replayed.tip.hash_hex == hashes[-1]
    assert {h[::-1].hex() for h in replayed.invalid} == {forged[0]}
