"""Events of a Bitmessage node, found by polling its API and remembered in DATA_PATH.

A PyBitmessage node pushes nothing (its apinotifypath runs a program on a few internal events),
so the daemon polls: clientStatus for connectivity, the inbox's msgids for new messages, and
getStatus for each message sent through the daemon until its status is final. What has been
reported is kept in SQLite tables next to the event log, so a restart of the daemon or of the
node neither repeats an event nor loses one: a message that arrived while either was down is
found by the next poll, because the inbox is compared with what was reported, not watched live.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from daemons.bitmessage_client import BitmessageClient
from daemons.bitmessage_commands import FINAL_STATUSES

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS bitmessage_inbox_seen (msgid TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS bitmessage_tracked (
    ackdata TEXT PRIMARY KEY,
    wallet TEXT,
    status TEXT,
    final INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bitmessage_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
NEW_MESSAGE_FIELDS = ("msgid", "toAddress", "fromAddress", "subject", "receivedTime")

# BaseDaemon.notify: its ``also`` runs in the event's own transaction on the same connection as
# ``db``, so an event and the record that it was reported are stored together or not at all.
Notify = Callable[..., Awaitable[int]]


class NodeWatcher:
    """One poll compares the node with the reported state and emits what changed, in that order."""

    def __init__(self, client: BitmessageClient, db: sqlite3.Connection, notify: Notify, notify_existing: bool):
        self.client = client
        self.db = db
        self.notify = notify
        self.notify_existing = notify_existing
        db.executescript(SCHEMA)

    # -- small durable state -----------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM bitmessage_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO bitmessage_state (key, value) VALUES (?, ?)", (key, value))

    async def track(self, ackdata: str, wallet: str | None, status: str) -> None:
        """Follow a message sent through the daemon until its status is final.

        Its first status is known without asking (the node stores the message with it) and is
        reported now: a node that is done with a message before the next poll (one to its own
        address takes it to msgsentnoackexpected within a second) still shows where it started.
        """

        def record(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO bitmessage_tracked (ackdata, wallet, status) VALUES (?, ?, ?)",
                (ackdata, wallet, status),
            )

        await self.notify("message_status", {"ackdata": ackdata, "status": status}, wallet, also=record)

    # -- one poll ------------------------------------------------------------------------------------

    async def poll(self) -> dict[str, Any]:
        """Poll everything once; returns the node's clientStatus. Node errors propagate to the caller."""
        status = await self.poll_status()
        await self.poll_inbox()
        await self.poll_sent()
        return status

    async def poll_status(self) -> dict[str, Any]:
        status = await self.client.call("clientStatus")
        current = f"{status.get('networkStatus')}|{status.get('networkConnections')}"
        if current != self.get_state("node_status"):
            fields = {
                "networkStatus": status.get("networkStatus"),
                "networkConnections": status.get("networkConnections"),
            }
            await self.notify("node_status", fields, None, also=lambda db: self.set_state("node_status", current))
        return status

    async def poll_inbox(self) -> None:
        ids = [row["msgid"] for row in (await self.client.call("getAllInboxMessageIds"))["inboxMessageIds"]]
        seen = {row[0] for row in self.db.execute("SELECT msgid FROM bitmessage_inbox_seen")}
        fresh = [msgid for msgid in ids if msgid not in seen]
        if self.get_state("inbox_baseline") is None:
            # First contact with this node: what is already there is history, unless asked otherwise.
            if not self.notify_existing:
                self._mark_seen(fresh)
                fresh = []
            self.set_state("inbox_baseline", "done")
        for msgid in fresh:
            found = await self.client.call("getInboxMessageById", msgid)
            if found and found.get("inboxMessage"):
                row = found["inboxMessage"][0]
                fields = {key: row.get(key) for key in NEW_MESSAGE_FIELDS}
                await self.notify(
                    "new_message", fields, row.get("toAddress"), also=lambda db, m=msgid: self._mark_seen([m])
                )
            else:
                self._mark_seen([msgid])

    def _mark_seen(self, msgids: list[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO bitmessage_inbox_seen (msgid) VALUES (?)", [(m,) for m in msgids])

    async def poll_sent(self) -> None:
        rows = self.db.execute("SELECT ackdata, wallet, status FROM bitmessage_tracked WHERE final = 0").fetchall()
        for ackdata, wallet, previous in rows:
            status = await self.client.call("getStatus", ackdata)
            if status == previous:
                continue
            await self.notify(
                "message_status",
                {"ackdata": ackdata, "status": status},
                wallet,
                also=lambda db, a=ackdata, s=status: self._record_status(a, s),
            )

    def _record_status(self, ackdata: str, status: str) -> None:
        self.db.execute(
            "UPDATE bitmessage_tracked SET status = ?, final = ? WHERE ackdata = ?",
            (status, int(status in FINAL_STATUSES), ackdata),
        )
