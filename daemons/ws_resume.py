"""Opt-in websocket resume: a listener that names itself gets what it missed when it reconnects.

The bitcart SDK reconnects a dropped websocket after five seconds and sends only ``{"xpub": X}``,
never ``since``: events stored between the daemon's return (or the drop) and the re-scope would
never reach it. The daemon cannot know a client's cursor, unless the client names itself: a socket
opened with a client-chosen ``client_id`` (the query parameter ``/ws?client_id=...``, or the header
``X-Client-Id``, which the SDK sends from its session's headers) has its scope and cursor kept in
the event log's database. A later socket with the same ``client_id`` starts with that scope and
replays the stored events after that cursor before live ones, also across a daemon restart.

The cursor is saved when the scope changes, when the socket closes, at shutdown and every
``FLUSH_INTERVAL`` seconds: after a crash a resumed socket may get again what was sent since the
last save (at least once, never lost). A second socket with a ``client_id`` already connected takes
its place: the older one is closed (``CLOSE_REPLACED``), as it is most likely a half-open leftover.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
from typing import TYPE_CHECKING, Protocol

from .jsonrpc import INVALID_PARAMS, RPCError

if TYPE_CHECKING:
    from aiohttp import web

CLIENT_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
CLIENT_ID_HEADER = "X-Client-Id"
MAX_CLIENTS = 10_000  # client ids remembered at most; the least recently seen are forgotten first
FLUSH_INTERVAL = 10.0  # seconds between two saves of the connected named sockets' cursors
CLOSE_REPLACED = 4009  # application close code: another socket connected with this client_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS ws_clients (
    client_id TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    scope TEXT,
    updated REAL NOT NULL
);
"""


class ResumableClient(Protocol):
    """What resuming needs of a socket (daemons.websocket.WSClient); declared here because websocket imports
    this module, so this one imports no websocket."""

    scope: set[str] | None
    cursor: int

    def rescope(self, scope: set[str]) -> None: ...

    def replay_since(self, since: int) -> None: ...

    async def close(self, code: int, message: bytes) -> None: ...


def client_id_of(request: web.BaseRequest) -> str | None:
    """The ``client_id`` a socket asks to resume under (query or header), or None; -32602 if malformed."""
    from_query = request.query.get("client_id")
    from_header = request.headers.get(CLIENT_ID_HEADER)
    if from_query is not None and from_header is not None and from_query != from_header:
        raise RPCError(INVALID_PARAMS, f"client_id and the {CLIENT_ID_HEADER} header disagree")
    client_id = from_query if from_query is not None else from_header
    if client_id is not None and not CLIENT_ID.fullmatch(client_id):
        raise RPCError(INVALID_PARAMS, "client_id must be 1 to 128 letters, digits or . _ : @ -")
    return client_id


class ResumeRegistry:
    """The named sockets of one hub and their durable (scope, cursor) in the ``ws_clients`` table."""

    def __init__(self, db: sqlite3.Connection, max_clients: int = MAX_CLIENTS) -> None:
        self.db = db
        self.max_clients = max_clients
        db.executescript(SCHEMA)
        self.named: dict[str, ResumableClient] = {}
        self.ids: dict[ResumableClient, str] = {}
        self.saved: dict[ResumableClient, tuple[int, frozenset[str] | None]] = {}
        self.flusher: asyncio.Task[None] | None = None

    def load(self, client_id: str) -> tuple[int, set[str] | None] | None:
        row = self.db.execute("SELECT cursor, scope FROM ws_clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            return None
        return int(row[0]), None if row[1] is None else set(json.loads(row[1]))

    def save(self, client: ResumableClient) -> None:
        """Store the socket's scope and cursor (only when they changed since the last save)."""
        client_id = self.ids.get(client)
        if client_id is None:
            return
        state = (client.cursor, None if client.scope is None else frozenset(client.scope))
        if self.saved.get(client) == state:
            return
        scope = None if client.scope is None else json.dumps(sorted(client.scope))
        self.db.execute(
            "INSERT INTO ws_clients (client_id, cursor, scope, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (client_id) DO UPDATE SET cursor = excluded.cursor, scope = excluded.scope, "
            "updated = excluded.updated",
            (client_id, client.cursor, scope, time.time()),
        )
        self.saved[client] = state

    def forget_oldest(self) -> None:
        self.db.execute(
            "DELETE FROM ws_clients WHERE client_id IN "
            "(SELECT client_id FROM ws_clients ORDER BY updated DESC LIMIT -1 OFFSET ?)",
            (self.max_clients,),
        )

    async def attach(self, client: ResumableClient, client_id: str, newest_id: int) -> None:
        """Name the socket; a known ``client_id`` gets its scope back and replays from its cursor."""
        previous = self.named.get(client_id)
        if previous is not None:
            self.detach(previous)
            await previous.close(CLOSE_REPLACED, b"another connection took this client_id")
        stored = self.load(client_id)
        self.named[client_id] = client
        self.ids[client] = client_id
        if stored is None:
            self.save(client)  # known from now on: a reconnection resumes from here
            self.forget_oldest()
        else:
            cursor, scope = stored
            if scope is not None:
                client.rescope(scope)
            if cursor <= newest_id:  # a cursor above the log's newest id belongs to a log that is gone
                client.replay_since(cursor)
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self.flush_forever())

    def detach(self, client: ResumableClient) -> None:
        """The socket is going away: save where it is, and let its name go."""
        self.save(client)
        client_id = self.ids.pop(client, None)
        self.saved.pop(client, None)
        if client_id is not None and self.named.get(client_id) is client:
            del self.named[client_id]

    def save_all(self) -> None:
        for client in list(self.ids):
            self.save(client)

    async def flush_forever(self) -> None:
        while self.ids:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.save_all()

    async def stop(self) -> None:
        self.save_all()
        if self.flusher is not None:
            self.flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.flusher
