"""Turning successive polls of one miner into events: pure logic, no I/O.

``observe`` compares a fresh /2/summary (or None when the miner is down) with what was last reported and
returns the events to send plus the new state to remember. The state is plain JSON so the daemon can store it
and, after a restart, neither repeat nor miss an event. Values seen for the first time set the baseline
without an event (except the first online/offline verdict and the first hashrate).
"""

from __future__ import annotations

from typing import Any

Event = tuple[str, dict[str, Any]]
HASHRATE_KEYS = ("10s", "60s", "15m")


def hashrate_of(summary: dict[str, Any]) -> dict[str, float | None]:
    """XMRig's ``hashrate.total`` array (10 s, 60 s, 15 min averages; null while unknown) as named fields."""
    total = (summary.get("hashrate") or {}).get("total") or []
    values = [*list(total)[:3], None, None, None][:3]
    return dict(zip(HASHRATE_KEYS, values, strict=True))


def shares_of(summary: dict[str, Any]) -> dict[str, int]:
    results = summary.get("results") or {}
    return {"good": int(results.get("shares_good") or 0), "total": int(results.get("shares_total") or 0)}


def pool_of(summary: dict[str, Any]) -> str | None:
    return (summary.get("connection") or {}).get("pool")


def observe(
    state: dict[str, Any], summary: dict[str, Any] | None, now: float, hashrate_interval: float, reason: str = ""
) -> tuple[list[Event], dict[str, Any]]:
    """Events caused by this poll, and the state to remember afterwards."""
    new = dict(state)
    if summary is None:
        if state.get("online") is False:
            return [], new
        new["online"] = False
        return [("miner_offline", {"reason": reason})], new
    events: list[Event] = []
    if state.get("online") is not True:
        events.append(("miner_online", {"version": summary.get("version"), "worker_id": summary.get("worker_id")}))
    new["online"] = True
    events += _changes(state, new, summary)
    events += _hashrate(state, new, summary, now, hashrate_interval)
    return events, new


def _changes(state: dict[str, Any], new: dict[str, Any], summary: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    paused = bool(summary.get("paused"))
    if "paused" in state and state["paused"] != paused:
        events.append(("miner_paused" if paused else "miner_resumed", {}))
    new["paused"] = paused
    pool = pool_of(summary)
    if "pool" in state and state["pool"] != pool:
        events.append(("pool_changed", {"pool": pool}))
    new["pool"] = pool
    shares = shares_of(summary)
    if "shares" in state and state["shares"] != shares:
        events.append(("shares", shares))
    new["shares"] = shares
    return events


def _hashrate(
    state: dict[str, Any], new: dict[str, Any], summary: dict[str, Any], now: float, interval: float
) -> list[Event]:
    """A hashrate event when the rates differ from the last reported ones, at most once per ``interval``."""
    rates = hashrate_of(summary)
    if rates == state.get("hashrate"):
        return []
    if now - float(state.get("hashrate_at", 0.0)) < interval:
        return []  # reported later, once the interval has passed, if still different
    new["hashrate"] = rates
    new["hashrate_at"] = now
    return [("hashrate", rates)]
