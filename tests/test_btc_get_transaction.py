"""get_transaction (issue 18): Electrum's decoding with the node's confirmations, each transaction decoded once, and
a confirmed one fetched from the server once, proven on its second lookup, then answered from the local chain until
a reorg orphans its block."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.btc_payment_support import eventually, online_daemon
from tests.btc_support import key_pair
from tests.regtest_fixtures import Key, coinbase_utxo, sign_tx

FEE = 20_000
SERVER_CALLS = ("get_transaction", "get_history_for_scripthash", "get_merkle_for_transaction")


def count_server_calls(network: Any) -> Counter[str]:
    """Count the daemon's requests to the server for a transaction, its height and its merkle proof."""
    calls: Counter[str] = Counter()
    for name in SERVER_CALLS:
        original = getattr(network, name)

        async def counted(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return await _original(*args, **kwargs)

        setattr(network, name, counted)
    return calls


async def electrum_deserialize(d: Any, raw: str) -> dict[str, Any]:
    """Electrum's own ``deserialize`` command, as the daemon's JSON carries it."""
    from electrum.commands import Commands

    direct = Commands(config=d.daemon.electrum_config, network=None, daemon=None)
    return json.loads(json.dumps(await direct.deserialize(raw)))


async def in_step_with_node(d: Any, stack: Any) -> None:
    """Until the daemon's local chain has the node's tip (same height, same block)."""
    network = d.daemon.network

    async def same_tip() -> bool:
        tip = await stack.arpc("getbestblockhash")
        height = network.get_local_height()
        return height == await stack.arpc("getblockcount") and network.blockchain().get_hash(height) == tip

    await eventually(same_tip)


async def node_confirmations(stack: Any, txid: str) -> int:
    """The regtest node's confirmations of a transaction, as Core's verbose getrawtransaction (none: unconfirmed)."""
    return int((await stack.arpc("getrawtransaction", txid, True)).get("confirmations", 0))


async def test_server_transaction_is_fetched_once_then_answered_from_the_local_chain_until_a_reorg(
    regtest_stack, electrum_regtest
):
    payer, payee = Key.from_int(331), Key.from_int(332)
    hashes = await regtest_stack.amine(101, payer.address)
    coin = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
    raw, txid = sign_tx([coin], [(payee.address, coin.value - FEE)])
    async with online_daemon(regtest_stack) as d:
        decoded = await electrum_deserialize(d, raw)
        await regtest_stack.arpc("sendrawtransaction", raw)
        mined = (await regtest_stack.amine(1, payer.address))[0]
        await in_step_with_node(d, regtest_stack)
        calls = count_server_calls(d.daemon.network)
        expected = {**decoded, "confirmations": await node_confirmations(regtest_stack, txid)}
        assert expected["confirmations"] == 1
        assert await d.call("get_transaction", txid) == expected
        assert calls == {"get_transaction": 1, "get_history_for_scripthash": 1}  # a first lookup: as before
        assert await d.call("get_transaction", txid) == expected  # the second proves the server's height
        assert calls == {"get_transaction": 1, "get_history_for_scripthash": 1, "get_merkle_for_transaction": 1}
        for _ in range(3):  # proven in the local chain's block: no round trip
            assert await d.call("get_transaction", txid) == expected
        assert sum(calls.values()) == 3

        await regtest_stack.amine(1, payer.address)  # one more confirmation, from the local height
        await in_step_with_node(d, regtest_stack)
        assert await node_confirmations(regtest_stack, txid) == 2
        assert await d.call("get_transaction", txid) == {**decoded, "confirmations": 2}
        assert sum(calls.values()) == 3

        # The block is orphaned by a longer branch without the transaction (back in the mempool).
        await regtest_stack.arpc("invalidateblock", mined)
        for _ in range(3):
            await regtest_stack.arpc("generateblock", payer.address, [])
        await regtest_stack.amine(0, payer.address)  # until ElectrumX serves the new tip
        await in_step_with_node(d, regtest_stack)
        assert await regtest_stack.arpc("getrawmempool") == [txid]
        assert await node_confirmations(regtest_stack, txid) == 0
        assert await d.call("get_transaction", txid) == {**decoded, "confirmations": 0}
        assert calls["get_transaction"] == 2 and calls["get_history_for_scripthash"] == 2
        assert calls["get_merkle_for_transaction"] == 1  # unconfirmed: nothing to prove

        await regtest_stack.amine(1, payer.address)  # the new branch confirms it
        await in_step_with_node(d, regtest_stack)
        assert await node_confirmations(regtest_stack, txid) == 1
        for _ in range(3):
            assert await d.call("get_transaction", txid) == {**decoded, "confirmations": 1}
        assert calls == {"get_transaction": 3, "get_history_for_scripthash": 3, "get_merkle_for_transaction": 2}


async def test_a_proof_that_fails_leaves_the_server_asked_on_every_call(regtest_stack, electrum_regtest):
    """A server whose merkle proof does not hold (here: the wrong position) is not believed: the answers stay the
    server path's, the proof is not asked again at that height."""
    payer, payee = Key.from_int(351), Key.from_int(352)
    hashes = await regtest_stack.amine(101, payer.address)
    coin = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
    raw, txid = sign_tx([coin], [(payee.address, coin.value - FEE)])
    async with online_daemon(regtest_stack) as d:
        await regtest_stack.arpc("sendrawtransaction", raw)
        await regtest_stack.amine(1, payer.address)
        await in_step_with_node(d, regtest_stack)
        network = d.daemon.network
        real_proof = network.get_merkle_for_transaction

        async def wrong_position(tx_hash: str, height: int) -> dict[str, Any]:
            proof = await real_proof(tx_hash, height)
            return {**proof, "pos": proof["pos"] ^ 1}

        network.get_merkle_for_transaction = wrong_position
        calls = count_server_calls(network)
        expected = {**(await electrum_deserialize(d, raw)), "confirmations": 1}
        for _ in range(4):
            assert await d.call("get_transaction", txid) == expected
        assert calls == {"get_transaction": 4, "get_history_for_scripthash": 4, "get_merkle_for_transaction": 1}


async def test_wallet_transaction_answers_electrums_deserialize_and_get_tx_status(regtest_stack, electrum_regtest):
    from electrum.commands import Commands

    payer = Key.from_int(341)
    merchant = key_pair(341, "p2wpkh")
    hashes = await regtest_stack.amine(101, payer.address)
    coin = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
    raw, txid = sign_tx([coin], [(merchant.first_address(), coin.value - FEE)])
    async with online_daemon(regtest_stack) as d:
        await d.call("getbalance", xpub=merchant.xpub)  # loads the wallet
        await regtest_stack.arpc("sendrawtransaction", raw)
        await regtest_stack.amine(2, payer.address)
        await in_step_with_node(d, regtest_stack)
        wallet = d.daemon.wallets[merchant.xpub]
        direct = Commands(config=d.daemon.electrum_config, network=None, daemon=None)

        async def wallet_confirms() -> bool:
            return (await direct.get_tx_status(txid, wallet=wallet))["confirmations"] == 2

        await eventually(wallet_confirms)
        calls = count_server_calls(d.daemon.network)
        status = await direct.get_tx_status(txid, wallet=wallet)
        expected = {**(await electrum_deserialize(d, raw)), **status}
        for _ in range(3):  # the first decodes, the others find the same bytes decoded
            assert await d.call("get_transaction", txid, xpub=merchant.xpub) == expected
        assert await d.call("get_tx_status", txid, xpub=merchant.xpub) == status
        assert sum(calls.values()) == 0  # the wallet holds it: the server is not asked


async def test_decoded_transactions_are_bounded_by_count_and_by_size():
    from daemons.tx_cache import Decoded, DecodedTransactions

    cache = DecodedTransactions(max_entries=2, max_raw_chars=10)
    cache.put("a", Decoded("00", {"n": 1}))
    cache.put("b", Decoded("11", {"n": 2}))
    assert cache.decoded("a", "00") is not None  # a used last: b is now the oldest
    cache.put("c", Decoded("22", {"n": 3}))
    assert set(cache.entries) == {"a", "c"}
    assert cache.decoded("a", "01") is None  # other bytes under the same txid: never answered for them
    cache.put("d", Decoded("3" * 9, {"n": 4}))  # c goes for the count, then a for the size (9 + 2 > 10)
    assert set(cache.entries) == {"d"} and cache.raw_chars == 9
    cache.put("e", Decoded("4" * 11, {"n": 5}))  # alone over the size: not kept
    assert set(cache.entries) == {"d"}
    cache.put("d", Decoded("55", {"n": 6}))  # replaced, not counted twice
    assert cache.raw_chars == 2 and len(cache) == 1
