"""The regtest node builds a valid chain, polices its mempool like Bitcoin Core, and real ElectrumX indexes it."""

from __future__ import annotations

import base64
import hashlib

import aiohttp
import pytest

from regtest.address import AddressError, address_to_script, script_to_address
from regtest.blocks import GENESIS_HASH, bip34_prefix, find_commitment, genesis_block, witness_commitment
from regtest.chain import Chain
from regtest.consensus import REGTEST_BITS, block_subsidy
from regtest.electrum_client import ElectrumClient, ElectrumError, scripthash
from regtest.errors import RPCError
from regtest.methods import NodeMethods
from regtest.node import RegtestNode
from regtest.serialize import Block, BlockHeader, DecodeError, Tx, bits_to_target, hash_hex, merkle_root, sha256d
from tests.regtest_fixtures import COINBASE_VALUE, Key, Utxo, coinbase_utxo, sats, sign_tx

FEE = 10_000


def rpc_of(chain: Chain):
    methods = NodeMethods(chain)
    return lambda method, *params: methods.call(method, list(params))


def funded_chain(key: Key, blocks: int = 101, datadir=None) -> tuple[Chain, list[str]]:
    chain = Chain(datadir)
    hashes = rpc_of(chain)("generatetoaddress", blocks, key.address)
    return chain, hashes


# ---- chain validity ----


def test_genesis_is_bitcoin_cores_regtest_genesis():
    block = genesis_block()
    assert block.hash_hex == GENESIS_HASH
    assert hash_hex(block.header.merkle_root) == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    assert (block.header.time, block.header.nonce, block.header.bits) == (1296688602, 2, 0x207FFFFF)
    assert Block.from_bytes(block.serialize()).hash_hex == GENESIS_HASH
    assert rpc_of(Chain())("getblockhash", 0) == GENESIS_HASH


@pytest.mark.parametrize("script_type", ["p2wpkh", "p2pkh", "p2wpkh-p2sh"])
def test_mined_headers_link_commit_and_pay_the_address(electrum_regtest, script_type):
    from electrum import bitcoin

    key = Key.from_int(7, script_type)
    chain, hashes = funded_chain(key, 160)
    assert [b.hash_hex for b in chain.blocks[1:]] == hashes
    target = bits_to_target(REGTEST_BITS)
    for height, block in enumerate(chain.blocks[1:], start=1):
        header = BlockHeader.from_bytes(block.serialize()[:80])
        assert header.prev_hash == chain.blocks[height - 1].hash
        assert header.merkle_root == merkle_root([sha256d(tx.serialize(with_witness=False)) for tx in block.txs])
        assert header.bits == REGTEST_BITS and int.from_bytes(sha256d(header.serialize()), "little") <= target
        assert header.time > chain.median_time_past(height - 1)
        coinbase = block.txs[0]
        assert coinbase.inputs[0].script_sig.startswith(bip34_prefix(height))
        assert coinbase.outputs[0].script == bytes.fromhex(bitcoin.address_to_script(key.address))
        assert coinbase.outputs[0].value == block_subsidy(height)
        assert find_commitment(coinbase) == witness_commitment(block.txs)
    assert block_subsidy(149) == COINBASE_VALUE and block_subsidy(150) == COINBASE_VALUE // 2


def test_bip34_height_encoding():
    assert bip34_prefix(1) == b"\x51" and bip34_prefix(16) == b"\x60"
    assert (
        bip34_prefix(17) == b"\x01\x11"
        and bip34_prefix(128) == b"\x02\x80\x00"
        and bip34_prefix(300) == b"\x02\x2c\x01"
    )


def test_addresses_match_electrums_decoding(electrum_regtest):
    from electrum import bitcoin

    pub = Key.from_int(3).pubkey
    addresses = [bitcoin.pubkey_to_address(t, pub) for t in ("p2wpkh", "p2pkh", "p2wpkh-p2sh")]
    addresses.append(bitcoin.script_to_p2wsh("51"))
    for address in addresses:
        script = address_to_script(address)
        assert script.hex() == bitcoin.address_to_script(address)
        assert script_to_address(script) == address
    for bad in ("", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8s", "bcrt1qxyz"):
        with pytest.raises(AddressError):
            address_to_script(bad)
    with pytest.raises(RPCError) as err:
        rpc_of(Chain())("generatetoaddress", 1, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT")  # a mainnet address
    assert err.value.code == -5


def test_blocks_with_broken_rules_are_refused(electrum_regtest):
    key = Key.from_int(9)
    chain, _ = funded_chain(key, 3)
    good = chain.build_block(address_to_script(key.address))
    bad_merkle = Block(BlockHeader(**{**vars(good.header), "merkle_root": bytes(32)}), good.txs)
    bad_link = Block(BlockHeader(**{**vars(good.header), "prev_hash": bytes(32)}), good.txs)
    for block in (bad_merkle, bad_link):
        with pytest.raises(ValueError):
            chain.connect_block(block)
    chain.connect_block(good)
    assert chain.height == 4


# ---- mempool ----


def test_mempool_accepts_then_mines_a_signed_segwit_spend(electrum_regtest):
    alice, bob = Key.from_int(11), Key.from_int(12)
    chain, hashes = funded_chain(alice)
    rpc = rpc_of(chain)
    coin = coinbase_utxo(rpc, hashes[0], alice)
    raw, txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
    assert rpc("sendrawtransaction", raw) == txid
    assert rpc("sendrawtransaction", raw) == txid  # already in the mempool: accepted again, as Core does
    assert rpc("getrawmempool") == [txid]
    assert sats(rpc("getmempoolentry", txid)["fees"]["base"]) == FEE
    spending = rpc("gettxspendingprevout", [{"txid": coin.txid, "vout": 0}])
    assert spending == [{"txid": coin.txid, "vout": 0, "spendingtxid": txid}]
    block_hash = rpc("generatetoaddress", 1, alice.address)[0]
    block = rpc("getblock", block_hash, 2)
    assert [tx["txid"] for tx in block["tx"]][1:] == [txid]
    assert sats(block["tx"][0]["vout"][0]["value"]) == block_subsidy(102) + FEE
    assert rpc("getrawmempool") == []
    verbose = rpc("getrawtransaction", txid, True)
    assert verbose["blockhash"] == block_hash and verbose["confirmations"] == 1
    assert verbose["hash"] != txid  # segwit: wtxid differs
    tx = Tx.from_hex(raw)
    assert tx.txid == txid and tx.wtxid == hash_hex(sha256d(bytes.fromhex(raw))) and tx.has_witness()
    assert sats(rpc("gettxout", txid, 0)["value"]) == COINBASE_VALUE - FEE
    spending = rpc("gettxspendingprevout", [{"txid": coin.txid, "vout": 0}])
    assert spending == [{"txid": coin.txid, "vout": 0, "spendingtxid": txid, "blockhash": block_hash}]


def expect_error(rpc, code: int, fragment: str, *call) -> None:
    with pytest.raises(RPCError) as err:
        rpc(*call)
    assert err.value.code == code and fragment in err.value.message, (err.value.code, err.value.message)


def test_mempool_refuses_what_core_refuses(electrum_regtest):
    alice, bob, carol = Key.from_int(21), Key.from_int(22), Key.from_int(23)
    chain, hashes = funded_chain(alice, 105)
    rpc = rpc_of(chain)
    coin = coinbase_utxo(rpc, hashes[0], alice)
    pay_bob, bob_txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
    pay_carol, _ = sign_tx([coin], [(carol.address, COINBASE_VALUE - FEE)])
    immature, _ = sign_tx([coinbase_utxo(rpc, hashes[-1], alice)], [(bob.address, COINBASE_VALUE - FEE)])
    overspend, _ = sign_tx([coinbase_utxo(rpc, hashes[1], alice)], [(bob.address, COINBASE_VALUE + 1)])
    no_fee, _ = sign_tx([coinbase_utxo(rpc, hashes[2], alice)], [(bob.address, COINBASE_VALUE)])
    ghost, _ = sign_tx([Utxo("11" * 32, 0, COINBASE_VALUE, alice)], [(bob.address, COINBASE_VALUE - FEE)])

    expect_error(rpc, -22, "TX decode failed", "sendrawtransaction", "00zz")
    expect_error(rpc, -22, "TX decode failed", "sendrawtransaction", pay_bob[:-2])
    expect_error(rpc, -26, "bad-txns-premature-spend-of-coinbase", "sendrawtransaction", immature)
    expect_error(rpc, -26, "bad-txns-in-belowout", "sendrawtransaction", overspend)
    expect_error(rpc, -26, "min relay fee not met", "sendrawtransaction", no_fee)
    expect_error(rpc, -25, "bad-txns-inputs-missingorspent", "sendrawtransaction", ghost)
    assert rpc("sendrawtransaction", pay_bob) == bob_txid
    expect_error(rpc, -26, "txn-mempool-conflict", "sendrawtransaction", pay_carol)
    assert rpc("testmempoolaccept", [pay_carol])[0] == {
        "txid": Tx.from_hex(pay_carol).txid,
        "wtxid": Tx.from_hex(pay_carol).wtxid,
        "allowed": False,
        "reject-reason": "txn-mempool-conflict",
    }
    rpc("generatetoaddress", 1, alice.address)
    expect_error(rpc, -25, "bad-txns-inputs-missingorspent", "sendrawtransaction", pay_carol)
    expect_error(rpc, -27, "Transaction already in block chain", "sendrawtransaction", pay_bob)
    assert rpc("getrawmempool") == []


def test_unconfirmed_chains_are_mined_in_order_and_conflicts_evicted(electrum_regtest):
    alice, bob, carol = Key.from_int(31), Key.from_int(32), Key.from_int(33)
    chain, hashes = funded_chain(alice)
    rpc = rpc_of(chain)
    parent, parent_txid = sign_tx([coinbase_utxo(rpc, hashes[0], alice)], [(bob.address, COINBASE_VALUE - FEE)])
    child, child_txid = sign_tx(
        [Utxo(parent_txid, 0, COINBASE_VALUE - FEE, bob)], [(carol.address, COINBASE_VALUE - 2 * FEE)]
    )
    rpc("sendrawtransaction", parent)
    rpc("sendrawtransaction", child)
    block = rpc("getblock", rpc("generatetoaddress", 1, alice.address)[0], 1)
    assert block["tx"][1:] == [parent_txid, child_txid]
    # a block (built by another node with the same history) confirming a conflicting spend evicts the
    # mempool spender and its descendants
    other = Chain()
    for block in chain.blocks[1:]:
        other.connect_block(block)
    coin = coinbase_utxo(rpc, hashes[1], alice)
    loser, loser_txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
    loser_child, _ = sign_tx(
        [Utxo(loser_txid, 0, COINBASE_VALUE - FEE, bob)], [(carol.address, COINBASE_VALUE - 2 * FEE)]
    )
    winner, winner_txid = sign_tx([coin], [(carol.address, COINBASE_VALUE - 2 * FEE)])
    unrelated, unrelated_txid = sign_tx([coinbase_utxo(rpc, hashes[2], alice)], [(bob.address, COINBASE_VALUE - FEE)])
    for raw in (loser, loser_child, unrelated):
        rpc("sendrawtransaction", raw)
    rpc_of(other)("sendrawtransaction", winner)
    chain.connect_block(other.build_block(address_to_script(alice.address)))
    assert rpc("getrawmempool") == [unrelated_txid]
    assert rpc("getrawtransaction", winner_txid, 1)["confirmations"] == 1


def test_chain_and_mempool_survive_a_restart(electrum_regtest, tmp_path):
    alice, bob = Key.from_int(41), Key.from_int(42)
    chain, hashes = funded_chain(alice, datadir=tmp_path)
    raw, txid = sign_tx([coinbase_utxo(rpc_of(chain), hashes[0], alice)], [(bob.address, COINBASE_VALUE - FEE)])
    rpc_of(chain)("sendrawtransaction", raw)
    again = Chain(tmp_path)
    assert again.tip.hash_hex == chain.tip.hash_hex and again.utxos == chain.utxos
    assert list(again.mempool.entries) == [txid]
    with open(tmp_path / "blocks.dat", "a") as f:  # a torn write is dropped, the rest kept
        f.write("0000")
    assert Chain(tmp_path).height == 101


# ---- RPC transport ----


async def test_rpc_server_speaks_bitcoinds_dialect():
    async with RegtestNode(user="u", password="p") as node, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{node.port}/"
        auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
        async with session.post(url, json={"method": "getblockcount", "id": 1}) as resp:
            assert resp.status == 401 and resp.headers["WWW-Authenticate"] == 'Basic realm="jsonrpc"'
        async with session.post(url, json={"method": "getblockcount", "id": 1}, headers=auth) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"result": 0, "error": None, "id": 1}
        batch = [{"method": "getblockhash", "params": [0], "id": 1}, {"method": "nope", "id": 2}]
        async with session.post(url, json=batch, headers=auth) as resp:
            body = await resp.json()
            assert resp.status == 200 and body[0]["result"] == GENESIS_HASH
            assert body[1]["error"]["code"] == -32601
        async with session.post(url, json={"method": "getblockhash", "params": [5], "id": 3}, headers=auth) as resp:
            assert resp.status == 500 and (await resp.json())["error"]["code"] == -8
        async with session.post(url, data=b"{", headers=auth) as resp:
            assert (await resp.json())["error"]["code"] == -32700
        v2 = {"jsonrpc": "2.0", "method": "getblock", "params": [GENESIS_HASH, 0], "id": 4}
        async with session.post(url, json=v2, headers=auth) as resp:
            body = await resp.json()
            assert "error" not in body and sha256d(bytes.fromhex(body["result"])[:80])[::-1].hex() == GENESIS_HASH
        async with session.post(url, data=b'{"method": "getnetworkinfo", "id": 5}', headers=auth) as resp:
            assert '"relayfee": 0.00001000' in await resp.text()  # amounts are exact numbers, as Core prints


def test_decoder_rejects_garbage():
    coinbase = genesis_block().txs[0].serialize()
    no_witness_items = coinbase[:4] + b"\x00\x01" + coinbase[4:-4] + b"\x00" + coinbase[-4:]
    for raw in (b"", b"\x01\x00\x00\x00\xff\xff\xff\xff\xff", coinbase + b"\x00", coinbase[:-1], no_witness_items):
        with pytest.raises(DecodeError):
            Tx.from_bytes(raw)
    assert Tx.from_bytes(coinbase).serialize() == coinbase


# ---- ElectrumX on top ----


async def test_electrumx_indexes_the_chain_and_relays_broadcasts(regtest_stack, electrum_regtest):
    alice, bob = Key.from_int(51), Key.from_int(52)
    hashes = await regtest_stack.amine(101, alice.address)
    async with ElectrumClient() as client:
        await client.connect("127.0.0.1", regtest_stack.electrumx.port)
        tip = await client.request("blockchain.headers.subscribe")
        assert tip["height"] == await regtest_stack.arpc("getblockcount")
        assert hashlib.sha256(hashlib.sha256(bytes.fromhex(tip["hex"])).digest()).digest()[::-1].hex() == hashes[-1]
        alice_sh = scripthash(address_to_script(alice.address))
        balance = await client.request("blockchain.scripthash.get_balance", alice_sh)
        assert balance == {"confirmed": 101 * COINBASE_VALUE, "unconfirmed": 0}
        assert len(await client.request("blockchain.scripthash.get_history", alice_sh)) == 101

        coin = coinbase_utxo(regtest_stack.rpc, hashes[0], alice)
        raw, txid = sign_tx([coin], [(bob.address, COINBASE_VALUE - FEE)])
        double, _ = sign_tx([coin], [(alice.address, COINBASE_VALUE - FEE)])
        bob_sh = scripthash(address_to_script(bob.address))
        await client.request("blockchain.scripthash.subscribe", bob_sh)
        assert await client.request("blockchain.transaction.broadcast", raw) == txid
        method, params = await client.notifications.get()
        assert (method, params[0]) == ("blockchain.scripthash.subscribe", bob_sh)
        bob_balance = await client.request("blockchain.scripthash.get_balance", bob_sh)
        assert bob_balance == {"confirmed": 0, "unconfirmed": COINBASE_VALUE - FEE}
        with pytest.raises(ElectrumError) as err:
            await client.request("blockchain.transaction.broadcast", double)
        assert "txn-mempool-conflict" in str(err.value)

        await client.request("blockchain.headers.subscribe")
        await regtest_stack.amine(1, alice.address)
        bob_balance = await client.request("blockchain.scripthash.get_balance", bob_sh)
        assert bob_balance == {"confirmed": COINBASE_VALUE - FEE, "unconfirmed": 0}
        history = await client.request("blockchain.scripthash.get_history", bob_sh)
        assert history == [{"tx_hash": txid, "height": 102}]
        assert await client.request("blockchain.transaction.get", txid) == raw


async def test_bitcoin_cash_mode_is_indexed_by_electrumx_bitcoincash(electrum_regtest):
    from electrum import bitcoin

    from regtest.stack import RegtestStack

    key = Key.from_int(61, "p2pkh")  # base58 P2PKH addresses are the same on BCH regtest
    with RegtestStack(coin="BitcoinCash") as stack:
        hashes = await stack.amine(3, key.address)
        block = Block.from_bytes(bytes.fromhex(await stack.arpc("getblock", hashes[-1], 0)))
        assert find_commitment(block.txs[0]) is None and not block.txs[0].has_witness()
        segwit_spend, _ = sign_tx([Utxo("22" * 32, 0, COINBASE_VALUE, Key.from_int(62))], [(key.address, 1000)])
        with pytest.raises(RPCError) as err:
            await stack.arpc("sendrawtransaction", segwit_spend)
        assert err.value.code == -22
        async with ElectrumClient() as client:
            await client.connect("127.0.0.1", stack.electrumx.port)
            assert (await client.request("blockchain.headers.subscribe"))["height"] == 3
            sh = bitcoin.script_to_scripthash(bitcoin.address_to_script(key.address))
            balance = await client.request("blockchain.scripthash.get_balance", sh)
            assert balance == {"confirmed": 3 * COINBASE_VALUE, "unconfirmed": 0}
