"""The BTC daemon online against the regtest stack (regtest node + ElectrumX): sync waits, chain events, tx lookups.

Payments end to end are tests/test_btc_payments.py's; this module checks the daemon's own network plumbing.
"""

from __future__ import annotations

import asyncio

from tests.btc_support import btc_daemon, call_error, key_pair


async def wait_for_events(d, xpub, names: set[str], attempts: int = 200) -> list[dict]:
    seen: list[dict] = []
    for _ in range(attempts):
        seen += await d.call("get_updates", xpub=xpub)
        if names <= {u["event"] for u in seen}:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"events {names} not seen; got {[u['event'] for u in seen]}")


async def test_network_methods_wait_for_sync_then_answer_and_chain_events_arrive(regtest_stack):
    env = {"OFFLINE": "false", "SERVER": regtest_stack.electrum_server, "ONESERVER": "true", "SYNC_TIMEOUT": "60"}
    async with btc_daemon(env) as d:
        keys = key_pair(41, "p2wpkh")
        address = keys.first_address()
        # The first network call waits for the headers, then answers.
        assert await d.call("getaddresshistory", address) == []
        before = await d.call("get_updates", xpub=keys.xpub)  # polling loads (watches) the wallet
        assert {u["event"] for u in before} <= {"new_block"}
        start_height = (await d.call("getinfo"))["server_height"]
        blocks = await regtest_stack.amine(1, address)
        updates = await wait_for_events(d, keys.xpub, {"new_block", "new_transaction", "verified_tx"})
        assert max(u["height"] for u in updates if u["event"] == "new_block") == start_height + 1
        coinbase = next(u["tx"] for u in updates if u["event"] == "new_transaction")
        assert {"event": "verified_tx", "tx": coinbase, "height": start_height + 1} in [
            {k: u[k] for k in ("event", "tx", "height") if k in u} for u in updates
        ]
        history = await d.call("getaddresshistory", address)
        assert history == [{"tx_hash": coinbase, "height": start_height + 1}]
        tx = await d.call("get_transaction", coinbase)
        assert tx["confirmations"] == 1 and tx["outputs"][0]["address"] == address
        assert (await d.call("get_transaction", coinbase, xpub=keys.xpub))["confirmations"] == 1
        assert blocks
        info = await d.call("getinfo")
        assert info["connected"] is True and info["synchronized"] is True and info["total_wallets"] == 1
        code, message = await call_error(d, "get_transaction", "ab" * 32)
        assert code == -32002 and "No such mempool or blockchain transaction" in message
        assert (await call_error(d, "get_transaction", "xyz"))[0] == -32001
        async with d.session.get(d.url + "/health") as response:
            assert response.status == 200 and (await response.json())["status"] == "ok"
