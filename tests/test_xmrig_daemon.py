"""The XMRIG daemon end to end: the real daemon serving two doubles of XMRig 6 (tests/xmrig_double.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from daemons.jsonrpc import RPCError
from daemons.xmrig import (
    CONFIG_REJECTED,
    MINER_EXISTS,
    MINER_FROM_SETTINGS,
    MINER_NOT_FOUND,
    MINER_NOT_READY,
    MINER_RESTRICTED,
    MINER_UNAUTHORIZED,
    MINER_UNAVAILABLE,
    XMRigDaemon,
)
from tests.support import DaemonClient, running_daemon, spawned_daemon
from tests.xmrig_double import XMRigDouble

TOKENS = {"rig1": "token-one", "rig2": "token-two"}
FAST = {"POLL_INTERVAL": "0.1", "HASHRATE_INTERVAL": "0.1", "TIMEOUT": "2"}


def miners_setting(*doubles: XMRigDouble) -> str:
    return json.dumps([{"name": d.config["api"]["worker-id"], "url": d.url, "token": d.token} for d in doubles])


@pytest.fixture
async def rigs() -> AsyncIterator[tuple[XMRigDouble, XMRigDouble]]:
    async with XMRigDouble("rig1", TOKENS["rig1"]) as one, XMRigDouble("rig2", TOKENS["rig2"], pool="p2:5555") as two:
        yield one, two


@pytest.fixture
async def daemon(rigs: tuple[XMRigDouble, XMRigDouble]) -> AsyncIterator[DaemonClient]:
    async with running_daemon(XMRigDaemon, env={**FAST, "MINERS": miners_setting(*rigs)}) as d:
        yield d


async def eventually(check: Callable[[], Awaitable[Any]], what: str, limit: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy (a guard against hanging, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def events(d: DaemonClient, miner: str, name: str | None = None) -> list[dict[str, Any]]:
    found = await d.call("get_updates", xpub=miner, since=0)
    return [e for e in found if name is None or e["event"] == name]


async def more_polls(d: DaemonClient, miner: str, count: int = 3) -> None:
    """Wait until the poller has stored ``count`` more snapshots of the miner, i.e. polled it again."""
    before = len(await d.call("history", xpub=miner))
    await eventually(lambda: _grown(d, miner, before + count), f"{count} more polls of {miner}")


async def _grown(d: DaemonClient, miner: str, size: int) -> bool:
    return len(await d.call("history", xpub=miner)) >= size


async def rpc_error(coro: Awaitable[Any]) -> RPCError:
    with pytest.raises(RPCError) as info:
        await coro
    return info.value


# ---------------------------------------------------------------- 1. every method on two miners at once
async def test_every_method_on_two_miners(daemon: DaemonClient, rigs: tuple[XMRigDouble, XMRigDouble]) -> None:
    one, two = rigs
    names = ["rig1", "rig2"]
    summaries = await asyncio.gather(*(daemon.call("summary", xpub=n) for n in names))
    assert [s["worker_id"] for s in summaries] == names
    backends = await asyncio.gather(*(daemon.call("backends", xpub=n) for n in names))
    assert all(b[0]["type"] == "cpu" for b in backends)
    configs = await asyncio.gather(*(daemon.call("config", xpub=n) for n in names))
    assert [c["pools"][0]["url"] for c in configs] == [one.pool, two.pool]

    # set_config merges: the rest of the config (its http section too) survives the partial update
    changed = await asyncio.gather(
        *(daemon.call("set_config", {"donate-level": 3, "cpu": {"priority": 2}}, xpub=n) for n in names)
    )
    assert all(c["applied"] and c["config"]["donate-level"] == 3 for c in changed)
    for double in rigs:
        assert double.config["donate-level"] == 3
        assert double.config["cpu"]["priority"] == 2 and double.config["cpu"]["enabled"] is True
        assert double.config["http"]["access-token"] == double.token and double.config["http"]["enabled"] is True
    # the token is masked in what config returns, and a config sent back whole keeps the real one
    assert configs[0]["http"]["access-token"] == "********"
    configs[0]["print-time"] = 30
    await daemon.call("set_config", configs[0], xpub="rig1")
    assert one.config["print-time"] == 30 and one.token == TOKENS["rig1"]
    err = await rpc_error(daemon.call("set_config", {"pools": []}, xpub="rig1"))
    assert err.code == CONFIG_REJECTED

    assert await asyncio.gather(*(daemon.call("pause", xpub=n) for n in names)) == [True, True]
    assert one.paused and two.paused
    await asyncio.gather(*(daemon.call("resume", xpub=n) for n in names))
    assert not one.paused and not two.paused

    await asyncio.gather(*(daemon.call("stop", xpub=n) for n in names))
    stopped = await asyncio.gather(*(daemon.call("hashrate", xpub=n) for n in names))
    assert all(h["10s"] == 0.0 for h in stopped)  # XMRig 6.26: a stopped miner hashes 0.0, not null
    await asyncio.gather(*(daemon.call("start", xpub=n) for n in names))  # start after stop brings them back
    restarted = await daemon.call("hashrate", xpub="rig1")
    assert (restarted["10s"], restarted["60s"], restarted["15m"]) == (None, None, None)  # windows filling
    one.set_hashrate(100.5, 200.0, 300.0)
    two.set_hashrate(50.25, 60.0, None)
    rates = await asyncio.gather(*(daemon.call("hashrate", xpub=n) for n in names))
    assert rates[0] == {"10s": 100.5, "60s": 200.0, "15m": 300.0, "highest": 300.0}
    total = await daemon.call("total_hashrate")
    assert (total["10s"], total["60s"], total["15m"]) == (150.75, 260.0, 300.0)
    assert total["counted"] == {"10s": 2, "60s": 2, "15m": 1} and total["answered"] == 2
    assert set(total["miners"]) == set(names)

    listed = await daemon.call("list_miners")
    assert [m["name"] for m in listed] == names
    assert all(m["has_token"] and m["source"] == "settings" and not m["overridden"] for m in listed)
    assert not any(token in json.dumps(listed) for token in TOKENS.values())

    history = await eventually(lambda: daemon.call("history", xpub="rig2"), "a stored snapshot of rig2")
    assert history[0]["summary"]["worker_id"] == "rig2"
    assert await daemon.call("history", xpub="rig2", start=history[-1]["time"] + 3600) == []


async def test_add_and_remove_miner_at_run_time(daemon: DaemonClient) -> None:
    async with XMRigDouble("rig3", "token-three") as three:
        added = await daemon.call("add_miner", "rig3", three.url, "token-three")
        assert added["source"] == "runtime" and added["has_token"]
        assert (await daemon.call("summary", xpub="rig3"))["worker_id"] == "rig3"
        assert (await rpc_error(daemon.call("add_miner", "rig3", three.url))).code == MINER_EXISTS
        assert await daemon.call("remove_miner", "rig3") is True
        assert (await rpc_error(daemon.call("summary", xpub="rig3"))).code == MINER_NOT_FOUND
    assert (await rpc_error(daemon.call("remove_miner", "rig1"))).code == MINER_FROM_SETTINGS
    assert (await rpc_error(daemon.call("remove_miner", "nobody"))).code == MINER_NOT_FOUND
    assert (await rpc_error(daemon.call("add_miner", "bad", "ftp://x:1"))).code == -32602
    assert (await rpc_error(daemon.call("summary"))).code == -32000


# ---------------------------------------------------------------- 2. XMRig's failure behaviours
async def test_failures_give_spec_errors_and_the_other_miner_keeps_serving(
    daemon: DaemonClient, rigs: tuple[XMRigDouble, XMRigDouble]
) -> None:
    one, two = rigs
    spec_codes = set((await _spec(daemon))["exceptions"])

    async def other_miner_still_serves() -> None:
        assert (await daemon.call("summary", xpub="rig2"))["worker_id"] == "rig2"

    # 401: a miner that wants a token we do not send; a wrong token (XMRig: 403 on a read)
    await daemon.call("add_miner", "no-token", one.url)
    await daemon.call("add_miner", "bad-token", one.url, "wrong-token")
    for name in ("no-token", "bad-token"):
        err = await rpc_error(daemon.call("summary", xpub=name))
        assert err.code == MINER_UNAUTHORIZED and "wrong-token" not in err.message
    await other_miner_still_serves()

    # 403 in restricted mode: reads work, writes are refused with their own code
    one.set_http(restricted=True)
    assert (await daemon.call("summary", xpub="rig1"))["restricted"] is True
    for method in ("pause", "resume", "stop", "start", "config"):
        assert (await rpc_error(daemon.call(method, xpub="rig1"))).code == MINER_RESTRICTED
    assert (await rpc_error(daemon.call("set_config", {"donate-level": 2}, xpub="rig1"))).code == MINER_RESTRICTED
    await other_miner_still_serves()
    one.set_http(restricted=False)

    # malformed backends JSON of an XMRig before 6.22.2: "not ready yet", its other endpoints keep working
    async with XMRigDouble("old", "token-old", version="6.21.0") as old:
        await daemon.call("add_miner", "old", old.url, "token-old")
        old.set_hashrate(None, None, None)
        old.backends_malformed = True
        err = await rpc_error(daemon.call("backends", xpub="old"))
        assert err.code == MINER_NOT_READY and "not ready yet" in err.message
        assert (await daemon.call("summary", xpub="old"))["version"] == "6.21.0"
        await daemon.call("remove_miner", "old")
    assert (await daemon.call("backends", xpub="rig2"))[0]["type"] == "cpu"

    # a miner that hangs past XMRIG_TIMEOUT, then one that is down
    one.hang = True
    assert (await rpc_error(daemon.call("summary", xpub="rig1"))).code == MINER_UNAVAILABLE
    await other_miner_still_serves()
    one.hang = False
    await one.stop()
    for method in ("summary", "pause", "hashrate"):
        assert (await rpc_error(daemon.call(method, xpub="rig1"))).code == MINER_UNAVAILABLE
    total = await daemon.call("total_hashrate")
    assert total["miners"]["rig1"]["error"]["code"] == MINER_UNAVAILABLE
    assert total["10s"] == two.hashrate[0] and total["counted"]["10s"] == 1
    await other_miner_still_serves()

    used = {MINER_UNAUTHORIZED, MINER_RESTRICTED, MINER_NOT_READY, MINER_UNAVAILABLE, MINER_NOT_FOUND}
    assert {str(code) for code in used} <= spec_codes


async def _spec(d: DaemonClient) -> dict[str, Any]:
    async with d.session.get(d.url + "/spec", auth=d.auth) as response:
        return await response.json()


# ---------------------------------------------------------------- 3. events, scoped to their miner, once
async def test_state_changes_produce_scoped_events_once(
    daemon: DaemonClient, rigs: tuple[XMRigDouble, XMRigDouble]
) -> None:
    one, two = rigs
    for name in ("rig1", "rig2"):
        await eventually(lambda n=name: events(daemon, n, "miner_online"), f"{name} online")

    async with daemon.ws_connect() as ws:
        await ws.send_json({"xpub": "rig1"})
        await more_polls(daemon, "rig1", 1)  # the scope is applied before the changes below

        await daemon.call("pause", xpub="rig1")
        await eventually(lambda: events(daemon, "rig1", "miner_paused"), "miner_paused")
        await daemon.call("resume", xpub="rig1")
        await eventually(lambda: events(daemon, "rig1", "miner_resumed"), "miner_resumed")
        await daemon.call("set_config", {"pools": [{"url": "new.pool:7777"}]}, xpub="rig1")
        await eventually(lambda: events(daemon, "rig1", "pool_changed"), "pool_changed")
        one.set_hashrate(4242.0, 4141.0, 4040.0)
        await eventually(lambda: _hashrate_events(daemon, "rig1", 4242.0), "hashrate event")
        one.add_share(accepted=True)
        one.add_share(accepted=False)
        await eventually(lambda: _shares_events(daemon, "rig1", {"good": 1, "total": 2}), "shares event")
        await more_polls(daemon, "rig1")
        await more_polls(daemon, "rig2")

        rig1 = await events(daemon, "rig1")
        for name in ("miner_paused", "miner_resumed", "pool_changed"):
            assert [e["event"] for e in rig1].count(name) == 1, name
        assert next(e for e in rig1 if e["event"] == "pool_changed")["pool"] == "new.pool:7777"
        assert len(await _hashrate_events(daemon, "rig1", 4242.0)) == 1
        hashrate = (await _hashrate_events(daemon, "rig1", 4242.0))[0]
        assert {key: hashrate[key] for key in ("10s", "60s", "15m")} == {"10s": 4242.0, "60s": 4141.0, "15m": 4040.0}
        assert len(await _shares_events(daemon, "rig1", {"good": 1, "total": 2})) == 1
        rig2 = {e["event"] for e in await events(daemon, "rig2")}
        assert not rig2 & {"miner_paused", "miner_resumed", "pool_changed", "shares"}

        # the websocket scoped to rig1 received rig1's changes and nothing of rig2
        received = await _drain(ws, until_id=max(e["id"] for e in rig1))
        assert {m["wallet"] for m in received} == {"rig1"}
        got = [e["event"] for m in received for e in m["updates"]]
        assert {"miner_paused", "miner_resumed", "pool_changed", "hashrate", "shares"} <= set(got)

    # down and back up: miner_offline then miner_online, once each
    await two.stop()
    await eventually(lambda: events(daemon, "rig2", "miner_offline"), "miner_offline")
    await two.start()
    await eventually(lambda: _count(daemon, "rig2", "miner_online", 2), "rig2 back online")
    await more_polls(daemon, "rig2")
    assert len(await events(daemon, "rig2", "miner_offline")) == 1
    assert len(await events(daemon, "rig2", "miner_online")) == 2


async def _hashrate_events(d: DaemonClient, miner: str, h10: float) -> list[dict[str, Any]]:
    return [e for e in await events(d, miner, "hashrate") if e["10s"] == h10]


async def _shares_events(d: DaemonClient, miner: str, shares: dict[str, int]) -> list[dict[str, Any]]:
    return [e for e in await events(d, miner, "shares") if {"good": e["good"], "total": e["total"]} == shares]


async def _count(d: DaemonClient, miner: str, name: str, count: int) -> bool:
    return len(await events(d, miner, name)) >= count


async def _drain(ws: Any, until_id: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while not messages or max(e["id"] for e in messages[-1]["updates"]) < until_id:
        messages.append(await ws.receive_json(timeout=20))
    return messages


# ---------------------------------------------------------------- 4. history (and state) across a restart
async def test_history_survives_a_restart(rigs: tuple[XMRigDouble, XMRigDouble], tmp_path: Path) -> None:
    one, _ = rigs
    env = {**FAST, "MINERS": miners_setting(one)}
    async with running_daemon(XMRigDaemon, env=env, data_path=tmp_path) as d:
        await d.call("add_miner", "rig1-again", one.url, TOKENS["rig1"])
        await more_polls(d, "rig1", 3)
        before = await d.call("history", xpub="rig1")
        online_before = await events(d, "rig1", "miner_online")
    async with running_daemon(XMRigDaemon, env={**env, "POLL_INTERVAL": "3600"}, data_path=tmp_path) as d:
        after = await d.call("history", xpub="rig1", start=before[0]["time"], end=before[-1]["time"])
        assert after == before
        assert [m["name"] for m in await d.call("list_miners")] == ["rig1", "rig1-again"]
        last = before[-1]["time"]
        await eventually(lambda: d.call("history", xpub="rig1", start=last + 1e-6), "the first poll after the restart")
        assert await events(d, "rig1", "miner_online") == online_before  # not announced twice


# ---------------------------------------------------------------- python -m daemons xmrig
async def test_started_as_a_module(rigs: tuple[XMRigDouble, XMRigDouble], tmp_path: Path) -> None:
    env = {**FAST, "MINERS": miners_setting(*rigs)}
    async with spawned_daemon("xmrig", env, tmp_path / "data") as (d, _process):
        async with d.session.get(d.url + "/health") as response:
            health = await response.json()
        assert health["name"] == "XMRIG" and health["miners"] == 2
        assert (await d.call("summary", xpub="rig2"))["worker_id"] == "rig2"
    log = next(tmp_path.glob("xmrig-*.log")).read_text()
    assert not any(token in log for token in TOKENS.values())
