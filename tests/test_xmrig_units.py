"""Pure parts of the XMRIG daemon: change detection, settings parsing, config merging."""

from __future__ import annotations

import pytest

from daemons.settings import SettingsError
from daemons.xmrig import XMRigDaemon, parse_miners, parse_time
from daemons.xmrig_client import MinerBadResponse, MinerEndpoint, XMRigClient
from daemons.xmrig_config import apply_config, deep_merge, endpoint_after
from daemons.xmrig_events import observe, sum_hashrates
from tests.support import NO_ENV_FILE


def summary(
    paused: bool = False,
    pool: str = "p:1",
    good: int = 0,
    total: int = 0,
    rates=(1.0, 2.0, 3.0),
    connected: bool = True,
    failures: int = 0,
) -> dict:
    """The parts of an XMRig 6.26 summary the poller reads (connection as NetworkState::getConnection)."""
    connection = {"pool": pool, "ip": "10.0.0.1" if connected else None, "uptime_ms": 5000 if connected else 0}
    return {
        "paused": paused,
        "connection": {**connection, "failures": failures},
        "results": {"shares_good": good, "shares_total": total},
        "hashrate": {"total": list(rates)},
    }


def names(events: list) -> list[str]:
    return [name for name, _ in events]


def test_first_poll_sets_the_baseline() -> None:
    events, state = observe({}, summary(paused=True), now=100.0, hashrate_interval=60)
    assert names(events) == ["miner_online", "hashrate"]
    events, _ = observe(state, summary(paused=True), now=101.0, hashrate_interval=60)
    assert events == []


def test_each_change_is_one_event() -> None:
    _, state = observe({}, summary(), now=0.0, hashrate_interval=60)
    events, state = observe(state, summary(paused=True, pool="p:2", good=1, total=2), 1.0, 60)
    assert events == [
        ("miner_paused", {}),
        ("shares", {"good": 1, "total": 2}),
        ("pool_changed", {"pool": "p:2", "previous": "p:1"}),
    ]
    events, state = observe(state, summary(paused=False, pool="p:2", good=1, total=2), 2.0, 60)
    assert events == [("miner_resumed", {})]


def test_hashrate_is_reported_at_most_once_per_interval() -> None:
    _, state = observe({}, summary(rates=(1, 1, 1)), now=0.0, hashrate_interval=60)
    events, state = observe(state, summary(rates=(5, 5, 5)), now=30.0, hashrate_interval=60)
    assert events == []  # too soon: held back, not lost
    events, state = observe(state, summary(rates=(5, 5, 5)), now=61.0, hashrate_interval=60)
    assert events == [("hashrate", {"10s": 5, "60s": 5, "15m": 5})]
    events, _ = observe(state, summary(rates=(5, 5, 5)), now=200.0, hashrate_interval=60)
    assert events == []  # unchanged: nothing to say


def test_offline_and_back() -> None:
    _, state = observe({}, summary(), 0.0, 60)
    events, state = observe(state, None, 1.0, 60, "unreachable", reason="miner rig is unreachable")
    assert events == [("miner_offline", {"state": "unreachable", "reason": "miner rig is unreachable"})]
    assert observe(state, None, 2.0, 60, "unreachable", "miner rig is unreachable")[0] == []
    events, _ = observe(state, summary(), 3.0, 60)
    assert names(events) == ["miner_online"]


def test_every_state_change_is_one_event() -> None:
    """Issue 15, item 6: a wrong or missing token, or a server that is not XMRig, is a state with a reason."""
    events, state = observe({}, None, 0.0, 60, "forbidden", "miner rig rejected the access token")
    assert events == [("miner_offline", {"state": "forbidden", "reason": "miner rig rejected the access token"})]
    assert observe(state, None, 1.0, 60, "forbidden", "miner rig rejected the access token")[0] == []
    events, state = observe(state, None, 2.0, 60, "unauthorized", "miner rig requires an access token")
    assert events == [("miner_offline", {"state": "unauthorized", "reason": "miner rig requires an access token"})]
    events, state = observe(state, None, 3.0, 60, "not_xmrig", "not an XMRig summary")
    assert names(events) == ["miner_offline"] and state["state"] == "not_xmrig"
    events, state = observe(state, summary(), 4.0, 60)
    assert events[0] == ("miner_online", {"version": None, "worker_id": None, "pool": "p:1", "pool_connected": True})
    # a state stored before states had names is read as online/offline: no second miner_online
    assert names(observe({"online": True}, summary(), 100.0, 60)[0]) == ["hashrate"]


def test_pool_lost_and_regained() -> None:
    """Issue 15, item 4: XMRig keeps the last pool when it loses it and reports "" before the first login."""
    _, state = observe({}, summary(pool="", connected=False), 0.0, 60)  # started, not logged in yet
    events, state = observe(state, summary(pool="p:1"), 1.0, 60)
    assert events == [("pool_connected", {"pool": "p:1"})]
    events, state = observe(state, summary(pool="p:1", connected=False, failures=1), 2.0, 60)
    assert events == [("pool_disconnected", {"pool": "p:1", "failures": 1})]
    assert observe(state, summary(pool="p:1", connected=False, failures=1), 3.0, 60)[0] == []
    events, state = observe(state, summary(pool="p:2", failures=1), 4.0, 60)
    assert events == [("pool_connected", {"pool": "p:2"})]
    all_events = [e for e in events]
    _, fresh = observe({}, summary(pool="", connected=False), 0.0, 60)
    for poll in (summary(pool="", connected=False), summary(pool="p:9")):
        found, fresh = observe(fresh, poll, 1.0, 60)
        all_events += found
    assert all(fields.get("pool") for name, fields in all_events if name.startswith("pool_"))


def test_totals_sum_the_figures_that_exist() -> None:
    """Issue 15, item 5: null (window filling) is left out, 0.0 (not hashing) counts, and the counts say so."""
    fresh = {"10s": 183.0, "60s": None, "15m": None}
    stopped = {"10s": 0.0, "60s": 0.0, "15m": 0.0}
    assert sum_hashrates([fresh, stopped]) == {
        "10s": 183.0,
        "60s": 0.0,
        "15m": 0.0,
        "counted": {"10s": 2, "60s": 1, "15m": 1},
    }
    assert sum_hashrates([fresh]) == {"10s": 183.0, "60s": None, "15m": None, "counted": {"10s": 1, "60s": 0, "15m": 0}}
    assert sum_hashrates([])["counted"] == {"10s": 0, "60s": 0, "15m": 0}


def test_endpoint_after_an_http_change() -> None:
    rig = MinerEndpoint("rig", "10.0.0.5:8080", "old")
    assert endpoint_after(rig, {"port": 8080, "access-token": "old"}, {"port": 8080, "access-token": "old"}) == rig
    same = endpoint_after(rig, {"port": 8080, "access-token": "old"}, {"port": 8080, "access-token": "new"})
    assert same.token == "new" and same.base_url == "http://10.0.0.5:8080"
    moved = endpoint_after(rig, {"host": "0.0.0.0", "port": 8080}, {"host": "::", "port": 9090})
    assert moved.base_url == "http://10.0.0.5:9090" and moved.token is None
    rehosted = endpoint_after(rig, {"host": "0.0.0.0", "port": 8080}, {"host": "10.0.0.6", "port": 8080})
    assert rehosted.base_url == "http://10.0.0.6:8080"


def test_miners_setting() -> None:
    miners = parse_miners('[{"name": "a", "url": "127.0.0.1:8080", "token": "t", "tls": true}]')
    assert miners[0].base_url == "https://127.0.0.1:8080" and miners[0].token == "t"
    for bad in (
        '{"name": "a"}',
        '[{"name": "a"}]',
        '[{"name": "", "url": "h:1"}]',
        "not json",
        '[{"name": "a", "url": "h:1"}, {"name": "a", "url": "h:2"}]',
    ):
        with pytest.raises(ValueError):
            parse_miners(bad)
    env = {"XMRIG_MINERS": '[{"name": "a", "url": "h:1", "token": "sekrit", "tls": "yes"}]'}
    with pytest.raises(SettingsError, match="XMRIG_MINERS") as info:
        XMRigDaemon(environ=env, env_file=NO_ENV_FILE)
    assert "sekrit" not in str(info.value)


def test_deep_merge_and_times() -> None:
    current = {"cpu": {"enabled": True, "priority": None}, "pools": [{"url": "a"}], "http": {"enabled": True}}
    merged = deep_merge(current, {"cpu": {"priority": 2}, "pools": [{"url": "b"}]})
    assert merged == {"cpu": {"enabled": True, "priority": 2}, "pools": [{"url": "b"}], "http": {"enabled": True}}
    assert parse_time("1970-01-01T00:01:00", 0.0) == 60.0
    assert parse_time("1970-01-01T01:01:00+01:00", 0.0) == 60.0
    assert parse_time(None, 5.0) == 5.0


class SwappingMiner(XMRigClient):
    """A miner whose file watcher swaps tokens between the two requests that tell a 403 apart (seen on
    a real 6.26.0): the first read-back fails with an answer that fits neither case."""

    def __init__(self) -> None:
        super().__init__(MinerEndpoint("rig", "127.0.0.1:1", "t"))
        self.current = {"pools": [{"url": "p:1"}], "http": {"access-token": "t"}, "print-time": 60}
        self.reads = 0

    async def config(self) -> dict:
        self.reads += 1
        if self.reads == 2:
            raise MinerBadResponse("miner rig: GET /2/config answered HTTP 403")
        return self.current

    async def put_config(self, config: dict) -> None:
        self.current = config


async def test_a_failed_read_back_is_retried_until_the_deadline() -> None:
    miner = SwappingMiner()
    outcome = await apply_config(miner, {"print-time": 30}, wait=5.0)
    assert outcome.applied and outcome.config["print-time"] == 30 and miner.reads == 3
