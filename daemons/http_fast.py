"""``POST /`` served below aiohttp: the connection protocol a daemon listens with (issue 18).

aiohttp's own request handling (its protocol, request, stream, response and writer objects) is about two
thirds of what a cheap JSON-RPC call costs (``bench/dispatch.py --instructions --floors``). Payment processors
make almost only such calls, all of them ``POST /`` with a small JSON body and a ``Content-Length``. So each
connection starts in ``FastConnection``, which reads requests of that one plain form itself and answers them
with the same bytes aiohttp would send; at the first request of any other form (another path or method,
chunked or compressed bodies, ``Expect``, an upgrade to a websocket, HTTP/1.0, a head this module does not
read as plainly well-formed) it hands the connection, with every byte not yet answered, to aiohttp's protocol
(``JSONErrorRequestHandler``) for good. Nothing is answered here that aiohttp would have read differently:
the form accepted is a strict subset of HTTP/1.1 (one ``Content-Length`` of digits, no ``Transfer-Encoding``,
header names that are tokens, no bare CR, LF or NUL), and anything else, malformed input included, is
aiohttp's to answer or refuse.

What the daemon promises every request holds here as on aiohttp's path: the connection guard's caps and head
deadline (daemons/connections.py), the body limit (413) and body deadline (408, connection closed), browser
origins and foreign Hosts refused (403), Basic auth (401), ``/metrics`` counting, the keep-alive timeout, and
requests answered in order on a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from aiohttp.http import SERVER_SOFTWARE
from aiohttp.tcp_helpers import tcp_keepalive

from . import jsonrpc
from .http_errors import error_body
from .http_rpc import body_too_large
from .jsonrpc import INVALID_REQUEST, RPCError

logger = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # a longer head goes to aiohttp, which enforces its own line and field limits
MAX_HEADERS = 100
PLAIN_HEAD = re.compile(rb"POST / HTTP/1\.1(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\x00]*)*")
FIELD = re.compile(rb"\r\n([^:]+):([^\r]*)")
FIELDS_READ = {
    b"content-length": "length",
    b"connection": "connection",
    b"authorization": "authorization",
    b"origin": "origin",
    b"host": "host",
    **dict.fromkeys((b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"), "refused"),
}
SERVER = SERVER_SOFTWARE.encode()  # what aiohttp's answers say
UNAUTHORIZED_TEXT = json.dumps(
    {"jsonrpc": "2.0", "error": {"code": INVALID_REQUEST, "message": "Unauthorized"}, "id": None}
)
REASONS = {200: b"OK", 204: b"No Content", 401: b"Unauthorized", 403: b"Forbidden", 408: b"Request Timeout"}
REASONS |= {413: b"Request Entity Too Large", 500: b"Internal Server Error"}


@dataclass(slots=True)
class PlainPost:
    """A ``POST /`` head of the plain form, with what the daemon reads of it."""

    length: int
    authorization: str | None
    origin: str | None
    host: str | None
    close: bool


def read_plain_post(head: bytes) -> PlainPost | None:
    """The head (without its blank line) as a PlainPost, or None: not of the plain form (aiohttp's to read)."""
    if PLAIN_HEAD.fullmatch(head) is None:  # the request line, then header lines "token:value" (no CR, LF, NUL)
        return None
    fields = FIELD.findall(head)
    if len(fields) > MAX_HEADERS:
        return None
    length = authorization = origin = host = None
    close = False
    for name, value in fields:
        kind = FIELDS_READ.get(name.lower())
        if kind is None:
            continue
        if kind == "refused":
            return None
        value = value.strip(b" \t")
        if kind == "length":
            if length is not None or not value.isdigit() or len(value) > 15:
                return None
            length = int(value)
        elif kind == "connection":
            tokens = {token.strip().lower() for token in value.split(b",")}
            if b"upgrade" in tokens:
                return None
            close = close or b"close" in tokens
        elif kind == "authorization":
            if authorization is not None:
                return None
            authorization = value.decode("latin-1")
        elif kind == "origin":
            if origin is not None:
                return None
            origin = value.decode("latin-1")
        else:
            if host is not None:
                return None
            host = value.decode("latin-1")
    if length is None:
        return None
    return PlainPost(length, authorization, origin, host, close)


class HTTPDate:
    """The ``Date`` header's text, made once per second (as aiohttp does)."""

    def __init__(self) -> None:
        self.second = 0
        self.text = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second, self.text = second, formatdate(second, usegmt=True).encode()
        return self.text


DATE = HTTPDate()


def answer_bytes(status: int, text: str | None, close: bool, extra: bytes = b"") -> bytes:
    """A whole answer as aiohttp writes it for a ``web.Response`` with JSON text (headers in its order)."""
    line = b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])
    tail = b"Date: %s\r\nServer: %s\r\n%s\r\n" % (DATE.now(), SERVER, b"Connection: close\r\n" if close else b"")
    if text is None:
        return line + tail
    body = text.encode()
    head = b"%sContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n" % (extra, len(body))
    return line + head + tail + body


class FastRPC:
    """What a FastConnection needs of its daemon, given once to the server that makes the connections."""

    def __init__(
        self,
        answer: Callable[[bytes], Awaitable[tuple[int, str | None]]],
        authorized: Callable[[str | None], bool],
        refusal: Callable[[str | None, str | None], str | None],
        observe_http: Callable[[str, int, float], None],
        max_body_size: int,
        body_timeout: float,
        keepalive_timeout: float,
    ) -> None:
        self.answer = answer
        self.authorized = authorized
        self.refusal = refusal
        self.observe_http = observe_http
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.keepalive_timeout = keepalive_timeout


class FastConnection(asyncio.Protocol):
    """One connection: plain ``POST /`` requests answered here, one at a time in order, until the first request
    of another form hands the connection to aiohttp (see the module doc)."""

    def __init__(self, server: Any, rpc: FastRPC, make_handler: Callable[[], Any]) -> None:
        self.server = server  # the DaemonServer: it registers connections, and its guard caps and times them
        self.rpc = rpc
        self.make_handler = make_handler
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered: later bytes wait in the buffer
        self.paused = False  # reading paused while they are too many
        self.write_paused = False  # the transport's buffer is full: the client is not reading its answers
        self.closing = False  # close once the request being answered is answered
        self.head: PlainPost | None = None  # the request whose body is awaited
        self.body_deadline: asyncio.TimerHandle | None = None
        self.idle_since = 0.0
        self.idle_check: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None  # the request being answered (shutdown waits for it)
        self._task_handler = None  # what web.Server.connection_lost reads of a connection

    # -- asyncio's calls ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        tcp_keepalive(transport)
        self.server.connection_made(self, transport)  # may refuse it: then force_close was called
        self.touch()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy or self.write_paused:  # pipelined requests wait; past one full request's size, the client too
            if not self.paused and len(self.buffer) > self.rpc.max_body_size + MAX_HEAD and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True
        elif not self.closing:
            self.read_requests()

    def pause_writing(self) -> None:
        # The client does not read its answers: answer nothing more until it does (what aiohttp's drain does).
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.busy and not self.closing:
            self.resume()

    def eof_received(self) -> bool:
        return False  # the client is done sending: close once the answers are out (as aiohttp does)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closing = True
        for handle in (self.body_deadline, self.idle_check):
            if handle is not None:
                handle.cancel()
        self.server.connection_lost(self, exc)

    # -- what web.Server and the connection guard call ----------------------------------------------

    def force_close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()  # what was written still goes out first

    def close(self) -> None:
        """At shutdown: close now if idle, else once the request being answered is answered."""
        self.closing = True
        if not self.busy and self.transport is not None:
            self.transport.close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        self.closing = True
        if self.busy and self.task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
        if self.transport is not None:
            self.transport.close()

    # -- reading -----------------------------------------------------------------------------------

    def read_requests(self) -> None:
        """Answer the next complete request in the buffer, or wait for more bytes, or hand over."""
        if self.head is None and not self.read_head():
            return
        head = self.head
        assert head is not None
        if len(self.buffer) < head.length:
            if self.body_deadline is None:
                self.body_deadline = self.loop.call_later(self.rpc.body_timeout, self.body_too_slow)
            return
        if self.body_deadline is not None:
            self.body_deadline.cancel()
            self.body_deadline = None
        body = bytes(self.buffer[: head.length])
        del self.buffer[: head.length]
        self.busy = True
        self.task = self.loop.create_task(self.answer(head, body))  # kept: the loop holds tasks only weakly

    def read_head(self) -> bool:
        """Take the next head from the buffer: True when it is a plain POST / whose body may be read. Refused
        before its body (the order of aiohttp's path: origin or Host, then credentials, then the body's size),
        it is answered at once and the connection closed, its body unread."""
        end = self.buffer.find(b"\r\n\r\n", 0, MAX_HEAD)
        if end < 0:
            if len(self.buffer) >= MAX_HEAD:
                self.hand_over()
            elif self.buffer:
                self.server.guard.data_received(self, False)  # a head has begun: its deadline runs
            return False
        head = read_plain_post(bytes(self.buffer[:end]))
        if head is None:
            self.hand_over()
            return False
        del self.buffer[: end + 4]
        self.server.guard.request_started(self)  # from here on the request is inside the daemon
        self.head = head
        rpc = self.rpc
        reason = rpc.refusal(head.origin, head.host)
        if reason is not None:
            self.refuse(403, error_body(403, reason))
        elif not rpc.authorized(head.authorization):
            self.refuse(401, UNAUTHORIZED_TEXT, b'WWW-Authenticate: Basic realm="daemon"\r\n')
        elif head.length > rpc.max_body_size:
            self.refuse(413, json.dumps(jsonrpc.error_response(None, body_too_large(rpc.max_body_size))))
        else:
            return True
        return False

    def refuse(self, status: int, text: str, extra: bytes = b"") -> None:
        self.rpc.observe_http("/", status, 0.0)
        self.finish(status, text, True, extra)

    def body_too_slow(self) -> None:
        self.body_deadline = None
        if self.head is not None and not self.busy:
            timeout = self.rpc.body_timeout
            error = RPCError(INVALID_REQUEST, f"Request body not received within {timeout:g} seconds")
            self.finish(408, json.dumps(jsonrpc.error_response(None, error)), True)

    def hand_over(self) -> None:
        """The rest of this connection is aiohttp's: its protocol takes the transport and every unanswered byte."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.closing = True
        if self.idle_check is not None:
            self.idle_check.cancel()
        self.server.connection_lost(self, None)  # the guard and the server count the new protocol instead
        handler = self.make_handler()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self.buffer and not transport.is_closing():
            handler.data_received(bytes(self.buffer))
        self.buffer.clear()

    # -- answering ---------------------------------------------------------------------------------

    async def answer(self, head: PlainPost, body: bytes) -> None:
        started = time.perf_counter()
        close = head.close
        try:
            status, text = await self.rpc.answer(body)
        except asyncio.CancelledError:  # no answer will come: the client must not wait for one
            self.force_close()
            raise
        except Exception:  # as aiohttp's handle_error answers a handler's failure
            logger.exception("answering POST / failed")
            status, text, close = 500, error_body(500, "Internal error"), True
        self.rpc.observe_http("/", status, time.perf_counter() - started)
        self.finish(status, text, close)

    def finish(self, status: int, text: str | None, close: bool, extra: bytes = b"") -> None:
        """Write the answer to the current request; then read the next one, or close."""
        self.head = None
        self.busy = False
        self.server.guard.request_finished(self)
        transport = self.transport
        close = close or self.closing
        if transport is not None and not transport.is_closing():
            transport.write(answer_bytes(status, text, close, extra))
            if close:
                transport.close()
        if close:
            self.closing = True
            return
        self.touch()
        if not self.write_paused:
            self.resume()

    def resume(self) -> None:
        """Read again: the next request waiting in the buffer, and the socket if it was paused."""
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if self.buffer:
            self.read_requests()

    # -- the keep-alive timeout ---------------------------------------------------------------------

    def touch(self) -> None:
        """Idle from now: closed after the keep-alive timeout unless a request comes (one timer, re-armed)."""
        self.idle_since = self.loop.time()
        if self.idle_check is None and self.rpc.keepalive_timeout > 0:
            self.idle_check = self.loop.call_later(self.rpc.keepalive_timeout, self.check_idle)

    def check_idle(self) -> None:
        self.idle_check = None
        if self.closing:
            return
        idle_for = self.loop.time() - self.idle_since
        if not self.busy and self.head is None and not self.buffer and idle_for >= self.rpc.keepalive_timeout:
            self.force_close()
        else:
            wait = self.rpc.keepalive_timeout - idle_for if not self.busy else self.rpc.keepalive_timeout
            self.idle_check = self.loop.call_later(max(wait, 0.1), self.check_idle)
