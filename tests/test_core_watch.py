"""Listening is watching: scoping a socket or polling get_updates loads the wallet, so events start."""

from __future__ import annotations

from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon


async def test_scoping_a_socket_loads_the_wallet_and_reports_bad_keys():
    async with running_daemon(SampleDaemon) as client, client.ws_connect() as ws:
        await ws.send_json({"xpubs": ["watch-a", "watch-b"]})
        await ws.send_json({"xpub": "bad-key"})
        error = await ws.receive_json(timeout=10)
        assert error["error"]["code"] == -32005 and "Invalid master key" in error["error"]["message"]
        assert {"watch-a", "watch-b"} <= set(client.daemon.wallets)
        assert "bad-key" not in client.daemon.wallets
        await ws.send_json({"since": "yesterday"})
        assert (await ws.receive_json(timeout=10))["error"]["code"] == -32602
        await ws.send_str("{not json")
        assert (await ws.receive_json(timeout=10))["error"]["code"] == -32700
        assert await client.call("add_numbers", 1, 1) == 2  # the daemon is unharmed


async def test_polling_loads_the_wallet():
    async with running_daemon(SampleDaemon) as client:
        assert await client.call("get_updates", xpub="polled") == []
        assert "polled" in client.daemon.wallets
