"""Durable wallet events: an append-only SQLite log with monotonic ids.

An event is written (and fsynced) before anyone is told of it, so its id is a cursor a client
can hand back with ``since`` after a disconnect or a daemon restart and lose nothing. SQLite's
AUTOINCREMENT guarantees ids never repeat, even after old rows are pruned by retention.
Writes are small and local, so they run on the event loop: that keeps the order in which events
are stored identical to the order in which they are fanned out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jsonrpc import INVALID_PARAMS, RPCError, json_default

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet TEXT,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_wallet ON events (wallet, id);
CREATE TABLE IF NOT EXISTS update_cursors (
    wallet TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
);
"""
PRUNE_EVERY = 1000  # appends between two retention passes
KNOWN_WALLETS = 4096  # polling wallets whose cursor and newest event id are kept in memory (oldest used dropped)
MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer: a cursor beyond it cannot even be compared


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    wallet: str | None
    fields: dict[str, Any]
    created: float

    def to_message(self) -> dict[str, Any]:
        """The event as listeners see it: ``{"event": name, "id": id, ...fields}``."""
        return {**self.fields, "event": self.name, "id": self.id}

    def concerns(self, wallets: set[str] | None) -> bool:
        """Global events (no wallet) reach everyone; a wallet's events reach unscoped and matching sockets."""
        return wallets is None or self.wallet is None or self.wallet in wallets


@dataclass
class PollState:
    """What the database says of one polling wallet, kept in memory (written through, never ahead of it)."""

    cursor: int  # update_cursors.last_id: the newest event get_updates reported without ``since``
    newest: int  # the id of the wallet's newest own event (0: none)


class EventStore:
    """The event log and the per-wallet cursors of polling clients (``get_updates``).

    A poll usually finds nothing new: the newest id, the newest global event's id and each polling
    wallet's cursor and newest event id are kept in memory (updated by the writes that change them, the
    wallets bounded to KNOWN_WALLETS), so such a poll answers without reading the database."""

    def __init__(self, path: Path, retention_count: int = 100_000, retention_days: float = 30.0) -> None:
        self.path = path
        self.retention_count = retention_count
        self.retention_days = retention_days
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only whatever the umask: SQLite gives its -wal and -shm files the database file's mode.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: an event the daemon has announced survives a power cut, not just a crash.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._appends = 0
        self.prune()
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        self._last_id = int(row[0]) if row else 0
        row = self.db.execute("SELECT MAX(id) FROM events WHERE wallet IS NULL").fetchone()
        self._newest_global = int(row[0] or 0)
        self._polling: OrderedDict[str, PollState] = OrderedDict()

    def close(self) -> None:
        self.db.close()

    def append(
        self,
        name: str,
        fields: dict[str, Any],
        wallet: str | None = None,
        also: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> Event:
        """Store an event. ``also`` runs in the same transaction: a poller records there what it has
        reported, so that a crash can neither lose the event nor report it twice."""
        payload = json.dumps(fields, default=json_default, separators=(",", ":"))
        created = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self.db.execute(
                "INSERT INTO events (wallet, name, payload, created) VALUES (?, ?, ?, ?)",
                (wallet, name, payload, created),
            )
            if also is not None:
                also(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        event_id = cursor.lastrowid
        assert event_id is not None
        self._last_id = event_id
        if wallet is None:
            self._newest_global = event_id
        elif (state := self._polling.get(wallet)) is not None:
            state.newest = event_id
        self._appends += 1
        if self._appends % PRUNE_EVERY == 0:
            self.prune()
        return Event(event_id, name, wallet, json.loads(payload), created)

    def last_id(self) -> int:
        """The newest id ever given (AUTOINCREMENT's sequence: pruned events keep theirs)."""
        return self._last_id

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def fetch(self, after: int, wallets: Iterable[str] | None = None, limit: int = 500) -> list[Event]:
        """Events with id > ``after`` that a socket scoped to ``wallets`` (None: unscoped) would get."""
        if wallets is None:
            rows = self.db.execute(
                "SELECT id, name, wallet, payload, created FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
        else:
            keys = list(wallets)
            marks = ",".join("?" * len(keys))
            rows = self.db.execute(
                "SELECT id, name, wallet, payload, created FROM events "
                f"WHERE id > ? AND (wallet IS NULL OR wallet IN ({marks})) ORDER BY id LIMIT ?",
                (after, *keys, limit),
            )
        return [Event(row[0], row[1], row[2], json.loads(row[3]), row[4]) for row in rows]

    def updates_for(self, wallet: str, since: int | None = None, limit: int = 1000) -> list[Event]:
        """Events for a polling client: after ``since``, or after its previous call without one.

        Only a call without ``since`` moves the wallet's shared cursor: a client reading with its own
        cursor must not make the plain pollers of that wallet miss events."""
        state = self.poll_state(wallet)
        after = state.cursor if since is None else since
        if after >= max(state.newest, self._newest_global):
            return []  # nothing stored after it concerns this wallet
        events = self.fetch(after, [wallet], limit)
        if events and since is None:
            self.db.execute(
                "INSERT INTO update_cursors (wallet, last_id) VALUES (?, ?) "
                "ON CONFLICT (wallet) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
                (wallet, events[-1].id),
            )
            state.cursor = max(state.cursor, events[-1].id)
        return events

    def poll_state(self, wallet: str) -> PollState:
        state = self._polling.get(wallet)
        if state is not None:
            self._polling.move_to_end(wallet)
            return state
        row = self.db.execute("SELECT last_id FROM update_cursors WHERE wallet = ?", (wallet,)).fetchone()
        newest = self.db.execute("SELECT MAX(id) FROM events WHERE wallet = ?", (wallet,)).fetchone()
        state = self._polling[wallet] = PollState(cursor=int(row[0]) if row else 0, newest=int(newest[0] or 0))
        if len(self._polling) > KNOWN_WALLETS:
            self._polling.popitem(last=False)
        return state

    def check_since(self, since: Any) -> int:
        """A client's ``since`` cursor, or -32602: not an event id, or above the newest id stored.

        A larger one comes from another (replaced or restored) event log: accepting it would hide
        every event until the ids catch up, so the client is told at once."""
        if not isinstance(since, int) or isinstance(since, bool) or not 0 <= since <= MAX_EVENT_ID:
            raise RPCError(INVALID_PARAMS, "'since' must be a non-negative integer event id")
        newest = self.last_id()
        if since > newest:
            message = f"'since' {since} is above the newest event id {newest}: that cursor is from another event log"
            raise RPCError(INVALID_PARAMS, message)
        return since

    def prune(self) -> None:
        """Apply retention: drop events older than the age limit, then the oldest beyond the count limit."""
        cutoff = time.time() - self.retention_days * 86400
        self.db.execute("DELETE FROM events WHERE created < ?", (cutoff,))
        self.db.execute(
            "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (self.retention_count,),
        )
