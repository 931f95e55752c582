"""Turning successive polls of one miner into events: pure logic, no I/O.

``observe`` compares a fresh /2/summary (or None when it could not be read, with the reason) with what was
last reported and returns the events to send plus the new state to remember. The state is plain JSON so the
daemon can store it and, after a restart, neither repeat nor miss an event. Values seen for the first time
set the baseline without an event (except the first state verdict and the first hashrate).
"""

from __future__ import annotations

from typing import Any

Event = tuple[str, dict[str, Any]]
HASHRATE_KEYS = ("10s", "60s", "15m")


def hashrate_of(summary: dict[str, Any]) -> dict[str, float | None]:
    """XMRig's ``hashrate.total`` array (10 s, 60 s, 15 min averages) as named fields.

    XMRig 6.26.0 (src/core/Miner.cpp getHashrate, src/backend/common/Hashrate.cpp) writes null only while
    an averaging window is still filling (a freshly started or restarted backend) and 0.0 for a miner that
    hashes nothing: stopped, paused, or without a pool.
    """
    total = (summary.get("hashrate") or {}).get("total") or []
    values = [*list(total)[:3], None, None, None][:3]
    figures = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values]
    return dict(zip(HASHRATE_KEYS, figures, strict=True))


def sum_hashrates(rates: list[dict[str, float | None]]) -> dict[str, Any]:
    """Per window, the sum of the figures that exist (null when no miner has one) and how many were summed."""
    totals: dict[str, Any] = {}
    counted: dict[str, int] = {}
    for key in HASHRATE_KEYS:
        figures = [r[key] for r in rates if r.get(key) is not None]
        totals[key] = sum(figures) if figures else None
        counted[key] = len(figures)
    return {**totals, "counted": counted}


def shares_of(summary: dict[str, Any]) -> dict[str, int]:
    results = summary.get("results") or {}
    return {"good": int(results.get("shares_good") or 0), "total": int(results.get("shares_total") or 0)}


def pool_status_of(summary: dict[str, Any]) -> tuple[str | None, bool]:
    """The pool XMRig names and whether it is connected to it now.

    XMRig (6.26.0, src/base/net/stratum/NetworkState.cpp) reports ``pool: ""`` until its first login and
    keeps the last pool's address after losing it, with ``paused`` unchanged; what tells is ``ip`` (null
    while there is no active connection) and ``uptime_ms`` (0 then).
    """
    connection = summary.get("connection") or {}
    connected = bool(connection.get("ip")) or bool(connection.get("uptime_ms"))
    return connection.get("pool") or None, connected


def observe(
    state: dict[str, Any],
    summary: dict[str, Any] | None,
    now: float,
    hashrate_interval: float,
    status: str = "ok",
    reason: str = "",
) -> tuple[list[Event], dict[str, Any]]:
    """Events caused by this poll, and the state to remember afterwards.

    ``status`` is the miner's state after this poll (``ok`` with a summary, else why there is none:
    ``unreachable``, ``unauthorized``, ``forbidden``, ``not_xmrig``, ...). Every change of it is one event:
    ``miner_online`` into ``ok``, ``miner_offline {state, reason}`` otherwise.
    """
    new = dict(state)
    new.pop("online", None)
    events: list[Event] = []
    if status != previous_status(state):
        new["state"] = status
        if status == "ok" and summary is not None:
            pool, connected = pool_status_of(summary)
            online = {"version": summary.get("version"), "worker_id": summary.get("worker_id")}
            events.append(("miner_online", {**online, "pool": pool, "pool_connected": connected}))
        else:
            events.append(("miner_offline", {"state": status, "reason": reason}))
    if summary is None:
        return events, new
    events += _changes(state, new, summary)
    events += _pool(state, new, summary)
    events += _hashrate(state, new, summary, now, hashrate_interval)
    return events, new


def previous_status(state: dict[str, Any]) -> str | None:
    """The stored state; states stored before there were reasons only said online or not."""
    if "state" in state:
        return state["state"]
    if "online" in state:
        return "ok" if state["online"] else "unreachable"
    return None


def _changes(state: dict[str, Any], new: dict[str, Any], summary: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    paused = bool(summary.get("paused"))
    if "paused" in state and state["paused"] != paused:
        events.append(("miner_paused" if paused else "miner_resumed", {}))
    new["paused"] = paused
    shares = shares_of(summary)
    if "shares" in state and state["shares"] != shares:
        events.append(("shares", shares))
    new["shares"] = shares
    return events


def _pool(state: dict[str, Any], new: dict[str, Any], summary: dict[str, Any]) -> list[Event]:
    """pool_connected / pool_disconnected on a change of connection, pool_changed for another pool while
    connected; never a change to XMRig's empty pool of before the first login."""
    pool, connected = pool_status_of(summary)
    last_pool = state.get("pool") or None
    new["pool_connected"] = connected
    if connected:
        new["pool"] = pool
    if "pool_connected" not in state:
        return []  # first sight: the baseline (miner_online carries it)
    if connected and not state["pool_connected"]:
        return [("pool_connected", {"pool": pool})]
    if not connected and state["pool_connected"]:
        failures = (summary.get("connection") or {}).get("failures")
        return [("pool_disconnected", {"pool": last_pool, "failures": failures})]
    if connected and last_pool and pool and pool != last_pool:
        return [("pool_changed", {"pool": pool, "previous": last_pool})]
    return []


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
