"""Plumbing between Electrum's global callbacks and the daemon's durable events.

Two jobs, both independent of any particular Electrum fork:

* ``AdbRouter``: Electrum registers every wallet's ``adb_*`` listeners globally and lets each one
  filter by its own AddressSynchronizer. Every address a wallet derives fires ``adb_set_up_to_date``
  into every loaded wallet, so loading N wallets costs O(N^2) listener tasks (200 watch-only wallets
  took ~20-50 s in measurements). The router moves a loaded wallet's ``adb_*`` listeners behind one
  listener per event that looks the wallet up by its adb: the same calls, O(1) each.
* ``ReportedState``: what has already been reported (the highest block, each request's status,
  each wallet transaction and its verified height), kept in DATA_PATH's SQLite so that an event is
  neither repeated nor lost across restarts.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import Callable
from typing import Any

ADB_EVENTS = ("adb_set_up_to_date", "adb_added_tx", "adb_added_verified_tx", "adb_removed_verified_tx")


class AdbRouter:
    """One global listener per ``adb_*`` event, dispatching to the wallet that owns the adb."""

    def __init__(self, register: Callable[..., Any], unregister: Callable[..., Any]) -> None:
        self._register = register
        self._unregister = unregister
        self._routes: dict[str, dict[int, Callable[..., Any]]] = {event: {} for event in ADB_EVENTS}
        self._entry_points: dict[str, Callable[..., Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        for event in ADB_EVENTS:
            entry = self._make_entry(event)
            self._entry_points[event] = entry
            self._register(entry, [event])

    def stop(self) -> None:
        for entry in self._entry_points.values():
            self._unregister(entry)
        self._entry_points.clear()

    def attach(self, wallet: Any) -> None:
        """Take over the wallet's adb listeners (Electrum's EventListener._list_callbacks)."""
        for event, method in wallet._list_callbacks():
            if event in self._routes:
                self._unregister(method)
                self._routes[event][id(wallet.adb)] = method

    def detach(self, wallet: Any) -> None:
        for routes in self._routes.values():
            routes.pop(id(wallet.adb), None)

    def _make_entry(self, event: str) -> Callable[..., None]:
        routes = self._routes[event]

        def entry(adb: Any, *args: Any) -> None:
            # Electrum runs plain callbacks on its event loop (call_soon_threadsafe or in place).
            target = routes.get(id(adb))
            if target is None:
                return
            if inspect.iscoroutinefunction(target):
                task = asyncio.ensure_future(target(adb, *args))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                target(adb, *args)

        return entry


STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS btc_reported (
    daemon TEXT NOT NULL,
    kind TEXT NOT NULL,
    wallet TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (daemon, kind, wallet, item)
);
"""


class ReportedState:
    """Durable memory of reported facts; a fact is reported only when its value changes.

    The daemon records a fact in the same SQLite transaction that stores its event (BaseDaemon.notify's
    ``also``), so a crash can neither lose the event nor report it twice.
    """

    def __init__(self, db: sqlite3.Connection, daemon: str) -> None:
        self.db = db
        self.daemon = daemon
        self.db.executescript(STATE_SCHEMA)

    def get(self, kind: str, wallet: str, item: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM btc_reported WHERE daemon = ? AND kind = ? AND wallet = ? AND item = ?",
            (self.daemon, kind, wallet, item),
        ).fetchone()
        return None if row is None else row[0]

    def put(self, kind: str, wallet: str, item: str, value: str, db: sqlite3.Connection | None = None) -> None:
        (db or self.db).execute(
            "INSERT INTO btc_reported (daemon, kind, wallet, item, value) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (daemon, kind, wallet, item) DO UPDATE SET value = excluded.value",
            (self.daemon, kind, wallet, item, value),
        )

    def recorder(self, kind: str, wallet: str, item: str, value: str) -> Callable[[sqlite3.Connection], None]:
        """``put`` as a callback for the event's own transaction."""
        return lambda db: self.put(kind, wallet, item, value, db)

    def wallets_with(self, kind: str, value: str) -> list[str]:
        """The wallets with a fact of ``kind`` whose value is ``value``."""
        rows = self.db.execute(
            "SELECT DISTINCT wallet FROM btc_reported WHERE daemon = ? AND kind = ? AND value = ?",
            (self.daemon, kind, value),
        ).fetchall()
        return [row[0] for row in rows]

    def is_new(self, kind: str, wallet: str, item: str, value: str) -> bool:
        """Whether ``value`` differs from what was last reported."""
        return self.get(kind, wallet, item) != value

    def is_higher(self, kind: str, item: str, value: int) -> bool:
        """Whether ``value`` is above the highest reported so far: each height is reported once."""
        last = self.get(kind, "", item)
        return last is None or int(last) < value
