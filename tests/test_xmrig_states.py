"""Miner states, pool events and hashrate totals as XMRig 6.26 reports them (issue 15, items 4 to 6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from daemons.xmrig import MINER_BAD_RESPONSE, XMRigDaemon
from tests.support import DaemonClient, running_daemon
from tests.test_xmrig_daemon import FAST, events, eventually, more_polls, rpc_error
from tests.xmrig_double import XMRigDouble, free_port, impostor

TOKEN = "token-one"


@pytest.fixture
async def daemon() -> AsyncIterator[DaemonClient]:
    async with running_daemon(XMRigDaemon, env=FAST) as d:
        yield d


async def _state(d: DaemonClient, name: str) -> str | None:
    return next(m["state"] for m in await d.call("list_miners") if m["name"] == name)


async def test_losing_and_regaining_the_pool(daemon: DaemonClient) -> None:
    """Item 4: pool_disconnected / pool_connected from XMRig's connection section; no pool_changed to ""."""
    async with XMRigDouble("rig1", TOKEN, pool="pool.local:3333", pool_online=False) as rig:
        await daemon.call("add_miner", "rig1", rig.url, TOKEN)
        online = await eventually(lambda: events(daemon, "rig1", "miner_online"), "rig1 online")
        assert online[0]["pool"] is None and online[0]["pool_connected"] is False  # XMRig says "" before login
        rig.set_pool_online(True)
        connected = await eventually(lambda: events(daemon, "rig1", "pool_connected"), "pool_connected")
        assert connected[0]["pool"] == "pool.local:3333"
        rig.set_pool_online(False)  # XMRig keeps connection.pool; ip turns null, failures count up
        lost = await eventually(lambda: events(daemon, "rig1", "pool_disconnected"), "pool_disconnected")
        assert lost[0]["pool"] == "pool.local:3333" and lost[0]["failures"] == 1
        rig.set_pool_online(True)
        await eventually(lambda: _count(daemon, "pool_connected", 2), "pool_connected again")
        await more_polls(daemon, "rig1")
        names = [e["event"] for e in await events(daemon, "rig1")]
        assert names.count("pool_disconnected") == 1 and names.count("pool_connected") == 2
        assert "pool_changed" not in names


async def _count(d: DaemonClient, name: str, count: int) -> bool:
    return len(await events(d, "rig1", name)) >= count


async def test_hashrate_zero_and_null_and_totals(daemon: DaemonClient) -> None:
    """Item 5: 0.0 for a stopped miner or one without a pool, null while a window fills; totals per window."""
    async with XMRigDouble("fresh", TOKEN) as fresh, XMRigDouble("idle", TOKEN) as idle:
        fresh.set_hashrate(183.0, None, None)
        for double in (fresh, idle):
            await daemon.call("add_miner", double.config["api"]["worker-id"], double.url, TOKEN)
        await daemon.call("stop", xpub="idle")
        assert await daemon.call("hashrate", xpub="idle") == {"10s": 0.0, "60s": 0.0, "15m": 0.0, "highest": 1000.0}
        total = await daemon.call("total_hashrate")
        assert (total["10s"], total["60s"], total["15m"]) == (183.0, 0.0, 0.0)
        assert total["counted"] == {"10s": 2, "60s": 1, "15m": 1} and total["answered"] == 2
        idle.set_pool_online(False)
        await daemon.call("start", xpub="idle")
        assert (await daemon.call("hashrate", xpub="idle"))["10s"] == 0.0  # no pool: nothing hashed


async def test_misconfigured_miners_get_a_state_and_an_event(daemon: DaemonClient) -> None:
    """Item 6: wrong token, missing token, nothing listening, an HTML page, a JSON-to-everything server."""
    async with XMRigDouble("rig1", TOKEN) as rig, impostor("html") as page, impostor("json") as anything:
        expected = {
            "good": (rig.url, TOKEN, "ok"),
            "wrong-token": (rig.url, "bad-secret-123", "forbidden"),
            "no-token": (rig.url, None, "unauthorized"),
            "down": (f"127.0.0.1:{free_port()}", TOKEN, "unreachable"),
            "page": (page, TOKEN, "not_xmrig"),
            "anything": (anything, TOKEN, "not_xmrig"),
        }
        for name, (url, token, _) in expected.items():
            await daemon.call("add_miner", name, url, token)
        for name, (_, _, state) in expected.items():
            await eventually(lambda n=name, s=state: _has_state(daemon, n, s), f"{name} {state}")
            found = await events(daemon, name, "miner_offline" if state != "ok" else "miner_online")
            assert len(found) == 1 and (state == "ok" or found[0]["state"] == state), name
        listed = {m["name"]: m for m in await daemon.call("list_miners")}
        assert listed["wrong-token"]["online"] is False
        assert "rejected the access token" in listed["wrong-token"]["reason"]
        assert "bad-secret-123" not in json.dumps(listed)

        # a server answering JSON to everything is not taken for a miner
        assert (await rpc_error(daemon.call("pause", xpub="anything"))).code == MINER_BAD_RESPONSE
        total = await daemon.call("total_hashrate")
        assert total["answered"] == 1 and total["counted"]["10s"] == 1
        assert total["miners"]["anything"]["error"]["code"] == MINER_BAD_RESPONSE

        # the token is fixed on the miner's side: back to ok, one more event
        rig.set_http(**{"access-token": "bad-secret-123"})
        await eventually(lambda: _has_state(daemon, "wrong-token", "ok"), "wrong-token ok")
        assert len(await events(daemon, "wrong-token", "miner_online")) == 1


async def _has_state(d: DaemonClient, name: str, state: str) -> bool:
    return await _state(d, name) == state
