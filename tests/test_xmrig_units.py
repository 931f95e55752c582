"""Pure parts of the XMRIG daemon: change detection, settings parsing, config merging."""

from __future__ import annotations

import pytest

from daemons.settings import SettingsError
from daemons.xmrig import XMRigDaemon, deep_merge, parse_miners, parse_time
from daemons.xmrig_events import observe
from tests.support import NO_ENV_FILE


def summary(paused: bool = False, pool: str = "p:1", good: int = 0, total: int = 0, rates=(1.0, 2.0, 3.0)) -> dict:
    return {
        "paused": paused,
        "connection": {"pool": pool},
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
    assert events == [("miner_paused", {}), ("pool_changed", {"pool": "p:2"}), ("shares", {"good": 1, "total": 2})]
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
    events, state = observe(state, None, 1.0, 60, reason="miner rig is unreachable")
    assert events == [("miner_offline", {"reason": "miner rig is unreachable"})]
    assert observe(state, None, 2.0, 60)[0] == []
    events, _ = observe(state, summary(), 3.0, 60)
    assert names(events) == ["miner_online"]


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
