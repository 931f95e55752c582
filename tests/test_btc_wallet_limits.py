"""MAX_WALLETS and WALLET_IDLE_TIMEOUT on the BTC daemon (real Electrum wallets, offline regtest)."""

from __future__ import annotations

import asyncio

from tests.btc_support import btc_daemon, call_error, key_pair

TOO_MANY_WALLETS = -32051


def keys(first: int, count: int) -> list[str]:
    return [key_pair(first + n, "p2wpkh").xpub for n in range(count)]


async def test_the_cap_unloads_the_least_recently_used_unwatched_wallet_and_refuses_past_watched_ones(
    electrum_regtest,
):
    async with btc_daemon({"MAX_WALLETS": "3", "WALLET_IDLE_TIMEOUT": "0"}) as d:
        a, b, c, e, f = keys(60, 5)
        for key in (a, b, c):
            await d.call("getbalance", xpub=key)
        await d.call("getbalance", xpub=a)  # a is now more recent than b
        await d.call("getbalance", xpub=e)
        assert set(d.daemon.wallets) == {a, c, e}  # b, the least recently used, made room
        # Many new wallets at once: never more than the cap, every call answered.
        await asyncio.gather(*(d.call("getbalance", xpub=key) for key in keys(70, 6)))
        assert len(d.daemon.wallets) == 3

        # Watched wallets stay: an open request, and a websocket scoped to a wallet.
        await d.call("add_request", "0.1", force=True, xpub=a)
        async with d.ws_connect() as ws:
            await ws.send_json({"xpub": b})
            await d.call("add_request", "0.2", force=True, xpub=c)
            for _ in range(200):  # the scope command loads b; it is not acknowledged
                if b in d.daemon.wallets:
                    break
                await asyncio.sleep(0.02)
            assert set(d.daemon.wallets) == {a, b, c}
            code, message = await call_error(d, "getbalance", xpub=f)
            assert code == TOO_MANY_WALLETS and "BTC_MAX_WALLETS=3" in message
            assert f not in d.daemon.wallets
            assert (await d.call("getbalance", xpub=a))["confirmed"] == "0"  # the daemon keeps serving
        # The request on c is deleted, the socket is gone: both may go now.
        request = (await d.call("list_requests", xpub=c))[0]
        await d.call("delete_request", request["request_id"], xpub=c)
        assert await d.call("list_requests", xpub=c) == []
        await d.call("getbalance", xpub=f)
        await d.call("getbalance", xpub=e)
        assert set(d.daemon.wallets) == {a, f, e}
        # What the unloaded wallets held is still there when they come back.
        assert [r["amount_BTC"] for r in await d.call("list_requests", xpub=a)] == ["0.1"]


async def test_idle_wallets_unload_unless_watched(electrum_regtest):
    async with btc_daemon({"WALLET_IDLE_TIMEOUT": "600"}) as d:
        assert d.daemon._idle_sweeper is not None
        watched, scoped, idle = keys(80, 3)
        await d.call("add_request", "0.1", force=True, xpub=watched)
        await d.call("getbalance", xpub=idle)
        async with d.ws_connect() as ws:
            await ws.send_json({"xpub": scoped})
            for _ in range(200):
                if scoped in d.daemon.wallets:
                    break
                await asyncio.sleep(0.02)
            usage = d.daemon.wallet_usage
            for key in usage.last_used:  # ten minutes pass, as far as the daemon can tell
                usage.last_used[key] -= 600
            assert await d.daemon.unload_idle_wallets() == [idle]
            assert set(d.daemon.wallets) == {watched, scoped}
        await d.call("getbalance", xpub=idle)  # used again: loaded again, and not idle
        assert await d.daemon.unload_idle_wallets() == [scoped]  # idle for long, and its socket is gone
        for key in usage.last_used:
            usage.last_used[key] -= 600
        assert await d.daemon.unload_idle_wallets() == [idle]
        assert set(d.daemon.wallets) == {watched}


async def test_unloaded_wallets_leave_no_keys_behind_in_electrums_caches(electrum_regtest):
    from electrum import keystore

    async with btc_daemon({"MAX_WALLETS": "2", "WALLET_IDLE_TIMEOUT": "0"}) as d:
        for key in keys(90, 6):  # four of them are unloaded to make room
            await d.call("getbalance", xpub=key)
        for key in list(d.daemon.wallets):
            await d.call("close_wallet", xpub=key)
        # Electrum's unbounded lru_cache on Xpub.derive_pubkey is keyed by the keystore: it kept every
        # keystore ever loaded, and its derived keys, for the life of the process.
        assert keystore.Xpub.derive_pubkey.cache_info().currsize == 0
