"""The XMRig daemon's durable state: miners added at run time, summary history, and what the poller reported.

One SQLite file under DATA_PATH. Calls are short, but they still run in a worker thread (``asyncio.to_thread``)
so that a slow disk never stalls the event loop; a lock serialises them on the shared connection. The file
holds miners' access tokens, so it is readable by its owner only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from daemons.xmrig_client import MinerEndpoint

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS xmrig_miners (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    token TEXT,
    tls INTEGER NOT NULL,
    verify_tls INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS xmrig_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    miner TEXT NOT NULL,
    time REAL NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS xmrig_history_miner_time ON xmrig_history (miner, time);
CREATE INDEX IF NOT EXISTS xmrig_history_time ON xmrig_history (time);
CREATE TABLE IF NOT EXISTS xmrig_overrides (
    name TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    url TEXT NOT NULL,
    token TEXT
);
CREATE TABLE IF NOT EXISTS xmrig_poll_state (
    miner TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"""


def settings_fingerprint(endpoint: MinerEndpoint) -> str:
    """Identifies an XMRIG_MINERS entry without storing its token: an override made by set_config holds
    only while the entry it was made for is unchanged."""
    fields = [endpoint.name, endpoint.url, endpoint.token, endpoint.tls, endpoint.verify_tls]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


class XMRigStore:
    """Miners, history snapshots and poller state, kept across restarts."""

    def __init__(self, path: Path, history_days: float) -> None:
        self.path = path
        self.history_days = history_days
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        os.chmod(path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run one store call off the event loop."""
        return await asyncio.to_thread(self._locked, func, *args)

    def _locked(self, func: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return func(*args)

    # ------------------------------------------------------------------ miners added at run time
    def load_miners(self) -> list[MinerEndpoint]:
        rows = self.db.execute("SELECT name, url, token, tls, verify_tls FROM xmrig_miners ORDER BY added")
        return [MinerEndpoint(r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in rows]

    def save_miner(self, miner: MinerEndpoint) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO xmrig_miners (name, url, token, tls, verify_tls, added) VALUES (?, ?, ?, ?, ?, ?)",
            (miner.name, miner.url, miner.token, int(miner.tls), int(miner.verify_tls), time.time()),
        )

    def update_miner(self, miner: MinerEndpoint) -> None:
        """New url and token of a run-time miner (its place in the list stays)."""
        update = "UPDATE xmrig_miners SET url = ?, token = ? WHERE name = ?"
        self.db.execute(update, (miner.url, miner.token, miner.name))

    # ------------------------------------------------------------------ XMRIG_MINERS entries changed by set_config
    def override(self, configured: MinerEndpoint, origin: str) -> MinerEndpoint | None:
        """The url and token set_config moved a setting's miner to, while its XMRIG_MINERS entry is unchanged;
        an override made for an entry that has changed since is dropped."""
        row = self.db.execute("SELECT origin, url, token FROM xmrig_overrides WHERE name = ?", (configured.name,))
        found = row.fetchone()
        if found is None:
            return None
        if found[0] != origin:
            self.db.execute("DELETE FROM xmrig_overrides WHERE name = ?", (configured.name,))
            return None
        return dataclasses.replace(configured, url=found[1], token=found[2])

    def save_override(self, endpoint: MinerEndpoint, origin: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO xmrig_overrides (name, origin, url, token) VALUES (?, ?, ?, ?)",
            (endpoint.name, origin, endpoint.url, endpoint.token),
        )

    def delete_miner(self, name: str) -> None:
        self.db.execute("DELETE FROM xmrig_miners WHERE name = ?", (name,))
        self.db.execute("DELETE FROM xmrig_poll_state WHERE miner = ?", (name,))

    # ------------------------------------------------------------------ history
    def add_snapshot(self, miner: str, when: float, summary: dict[str, Any]) -> None:
        """Store one summary and drop every snapshot older than the retention (removed miners' too)."""
        self.db.execute(
            "INSERT INTO xmrig_history (miner, time, summary) VALUES (?, ?, ?)",
            (miner, when, json.dumps(summary, separators=(",", ":"))),
        )
        cutoff = when - self.history_days * 86400
        self.db.execute("DELETE FROM xmrig_history WHERE time < ?", (cutoff,))

    def history(self, miner: str, start: float, end: float, limit: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT time, summary FROM xmrig_history WHERE miner = ? AND time >= ? AND time <= ? ORDER BY time LIMIT ?",
            (miner, start, end, limit),
        )
        return [{"time": row[0], "summary": json.loads(row[1])} for row in rows]

    # ------------------------------------------------------------------ poller state
    def poll_state(self, miner: str) -> dict[str, Any]:
        row = self.db.execute("SELECT state FROM xmrig_poll_state WHERE miner = ?", (miner,)).fetchone()
        return json.loads(row[0]) if row else {}

    def save_poll_state(self, miner: str, state: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO xmrig_poll_state (miner, state) VALUES (?, ?)",
            (miner, json.dumps(state, separators=(",", ":"))),
        )
