"""Connections: how many may be open, how long a request's head and body may take, and descriptors.

A connection costs a file descriptor whatever it does, and descriptors are few (often 1,024): a
client that opens many connections and sends its headers slowly would otherwise take them all,
and the process could then accept nothing, not even ``/health``. So:

- ``ConnectionGuard`` caps open connections in all and per peer address. At a cap, the oldest
  connection that is not inside a request (idle, or still sending its head) is closed to make
  room; when every connection is inside a request, the new one gets a 503 and is closed. A normal
  call, whose head follows its connect at once, therefore still gets in under a flood of slow ones.
- Each request's head must be complete within ``HEADER_TIMEOUT`` of the connect or of its first
  byte (the body has its own deadline, in the handler that reads it). Between two requests an idle
  connection lives until aiohttp's keep-alive timeout, or until a cap needs its place.
- ``raise_descriptor_limit`` lifts the soft RLIMIT_NOFILE to the hard one at start-up, and the cap
  in all stays below what remains, so accepting normally never runs out of descriptors.
- When the process runs out anyway (descriptors held elsewhere), asyncio logs a traceback for every
  failed accept, many per second; ``AcceptErrorLog`` logs one line per shortage instead.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)
# Descriptors kept for everything but client connections (wallet files, SQLite, backends, the logs).
RESERVED_DESCRIPTORS = 64
ACCEPT_ERROR = "socket.accept() out of system resource"


def raise_descriptor_limit() -> tuple[int, int]:
    """Lift the soft limit on open descriptors to the hard limit; returns the (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # such as a hard limit of "unlimited" the kernel caps lower
            logger.warning("cannot raise the open-files limit from %s to %s: %s", soft, hard, exc)
    return soft, hard


def connection_cap(setting: int) -> int:
    """MAX_CONNECTIONS, lowered to what the descriptor limit leaves after RESERVED_DESCRIPTORS."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return setting
    reserve = max(RESERVED_DESCRIPTORS, soft // 8)
    return max(1, min(setting, soft - reserve))


@dataclass(eq=False)
class Connection:
    peer: str
    transport: asyncio.BaseTransport
    peer_idle: OrderedDict[Any, None] = field(repr=False)  # the idle connections of the same peer (shared)
    in_request: int = 0
    head_deadline: asyncio.TimerHandle | None = field(default=None, repr=False)

    def cancel_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None


class ConnectionGuard:
    """The open connections of one daemon, their caps and their head deadlines (see the module doc)."""

    def __init__(self, max_connections: int, max_per_peer: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.header_timeout = header_timeout
        self.open: dict[Any, Connection] = {}
        self.per_peer: dict[str, int] = {}
        # Connections outside any request, oldest first: the ones a cap closes to make room.
        self.idle: OrderedDict[Any, None] = OrderedDict()
        self.idle_by_peer: dict[str, OrderedDict[Any, None]] = {}
        self.refused = self.evicted = self.timed_out = 0  # counts, for /metrics-like reports and tests

    # -- the connection's life, called by the server and its protocol -------------------------

    def connection_made(self, handler: Any, transport: asyncio.BaseTransport) -> bool:
        """Register a new connection; False when it must be refused (every open one is busy)."""
        peer = peer_of(transport)
        if self.per_peer.get(peer, 0) >= self.max_per_peer and not self.evict(self.idle_by_peer.get(peer)):
            self.refused += 1
            return False
        if len(self.open) >= self.max_connections and not self.evict(self.idle):
            self.refused += 1
            return False
        peer_idle = self.idle_by_peer.get(peer)
        if peer_idle is None:
            peer_idle = self.idle_by_peer[peer] = OrderedDict()
        connection = Connection(peer, transport, peer_idle)
        self.open[handler] = connection
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        self.idle[handler] = peer_idle[handler] = None
        self.start_deadline(handler, connection)
        return True

    def connection_lost(self, handler: Any) -> None:
        connection = self.open.pop(handler, None)
        if connection is None:
            return
        connection.cancel_deadline()
        self.idle.pop(handler, None)
        connection.peer_idle.pop(handler, None)
        left = self.per_peer.get(connection.peer, 1) - 1
        if left:
            self.per_peer[connection.peer] = left
        else:  # the peer's last connection: forget the peer
            self.per_peer.pop(connection.peer, None)
            self.idle_by_peer.pop(connection.peer, None)

    def data_received(self, handler: Any, head_complete: bool) -> None:
        """Bytes arrived: the head deadline starts with a request's first byte and ends with its head."""
        connection = self.open.get(handler)
        if connection is None or connection.in_request:
            return
        if head_complete:
            connection.cancel_deadline()
        elif connection.head_deadline is None:
            self.start_deadline(handler, connection)

    # Called around every request (daemons/http_routes.py): written without helper calls.

    def request_started(self, handler: Any) -> None:
        connection = self.open.get(handler)
        if connection is not None:
            connection.in_request += 1
            if connection.head_deadline is not None:
                connection.cancel_deadline()
            self.idle.pop(handler, None)
            connection.peer_idle.pop(handler, None)

    def request_finished(self, handler: Any) -> None:
        connection = self.open.get(handler)
        if connection is not None:
            connection.in_request -= 1
            if not connection.in_request:
                self.idle[handler] = connection.peer_idle[handler] = None

    # -- internals --------------------------------------------------------------------------------

    def evict(self, candidates: OrderedDict[Any, None] | None) -> bool:
        """Close the oldest connection outside a request among ``candidates``; False if there is none."""
        if not candidates:
            return False
        handler = next(iter(candidates))
        self.evicted += 1
        self.close(handler)
        return True

    def close(self, handler: Any) -> None:
        connection = self.open.get(handler)
        if connection is not None:
            connection.transport.close()
            self.connection_lost(handler)  # at once: its place is needed now, not when the loop gets to it

    def start_deadline(self, handler: Any, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        connection.head_deadline = loop.call_later(self.header_timeout, self.head_too_slow, handler)

    def head_too_slow(self, handler: Any) -> None:
        connection = self.open.get(handler)
        if connection is not None and not connection.in_request:
            self.timed_out += 1
            self.close(handler)


def peer_of(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "local"


class AcceptErrorLog:
    """A loop exception handler that logs running out of descriptors once, not per failed accept.

    asyncio reports each failed accept with a traceback, up to the listen backlog per try and a try
    every second: a flood of connections at the limit would fill the disk. The first failure is
    logged with what to do; later ones are counted and summed up in one line per REPEAT_AFTER seconds
    at most, while they go on."""

    REPEAT_AFTER = 600.0

    def __init__(self) -> None:
        self.failures = 0  # since the last line logged
        self.logged_at: float | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self.previous = loop.get_exception_handler()
        loop.set_exception_handler(self.handle)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if self.is_stale_retry(context):
            return
        if context.get("message") != ACCEPT_ERROR:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.failures += 1
        now = loop.time()
        if self.logged_at is not None and now - self.logged_at < self.REPEAT_AFTER:
            return
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        logger.error(
            "cannot accept connections: %s (open-files limit %s; %d failed accepts since the last such line, "
            "which is logged once per %d s at most). Raise the limit (ulimit -n) or lower MAX_CONNECTIONS",
            context.get("exception"),
            soft,
            self.failures,
            self.REPEAT_AFTER,
        )
        self.logged_at, self.failures = now, 0

    def is_stale_retry(self, context: dict[str, Any]) -> bool:
        """asyncio schedules a retry per failed accept: those due after the server closed its socket
        (at shutdown) fail on the closed descriptor, which is no news once the shortage was logged."""
        callback = getattr(context.get("handle"), "_callback", None)
        stale = isinstance(context.get("exception"), ValueError | OSError)
        return self.logged_at is not None and stale and getattr(callback, "__name__", "") == "_start_serving"
