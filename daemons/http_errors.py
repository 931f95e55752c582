"""The answers aiohttp gives on its own, given as JSON-RPC errors like every other answer of a daemon.

The contract promises a JSON body for every answer, but three kinds never reach the daemon's handlers:

- a path or method no route serves (404, 405): ``Routes`` (daemons/http_routes.py) answers them;
- a request aiohttp cannot parse (a bad Content-Length, a broken chunk, a malformed request line): its
  protocol answers 400 before any handler runs. aiohttp has no public hook for that answer, so the
  daemon's server (daemons/http_server.py) makes ``JSONErrorRequestHandler`` connections, whose
  ``handle_error`` answers in JSON.
  It checks that aiohttp still has what this relies on, and otherwise leaves aiohttp's plain-text answer
  (tests/test_core_http_errors.py fails then, so an aiohttp upgrade that breaks it is seen in CI);
- aiohttp logs each unparsable request with a traceback at ERROR, quoting the offending bytes: a malformed
  ``Authorization`` line would put credentials in the log, and garbage would fill it. ``QuietParseErrors``
  turns such a record into one INFO line that names only the kind of error.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from .jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, dumps


def error_body(status: int, message: str) -> str:
    """A JSON-RPC error without an id: -32600 for what the client got wrong, -32603 for the server's fault."""
    code = INTERNAL_ERROR if status >= 500 else INVALID_REQUEST
    return dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=error_body(status, message), content_type="application/json", headers=headers
    )


def raw_error_response(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for a transport no request handler serves."""
    body = error_body(status, message).encode()
    head = f"HTTP/1.1 {status} {phrase(status)}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class JSONErrorRequestHandler(RequestHandler):
    """aiohttp's connection protocol, with its own error answers (bad framing, 400) in JSON."""

    __slots__ = ()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs; raises if a response went out
        response = error_response(
            plain.status, f"Bad HTTP request: {phrase(status)}" if status < 500 else "Internal error"
        )
        response.force_close()  # as aiohttp does: after a framing error the stream cannot be trusted
        observe_http = getattr(self._manager, "observe_http", None)
        if observe_http is not None:  # counted here: such an answer never passes the daemon's dispatch
            observe_http(getattr(request, "path", "other"), response.status, 0.0)
        return response

    def data_received(self, data: bytes) -> None:
        # The guard times each request's head: it needs to know when one is complete (parsed). aiohttp
        # also calls this with b"" to reparse what it buffered: only a new request matters then.
        before = self._request_count
        super().data_received(data)
        if data or self._request_count != before:
            guard = getattr(self._manager, "guard", None)
            if guard is not None:
                guard.data_received(self, self._request_count != before)


def fits_this_aiohttp() -> bool:
    """Whether this aiohttp has the piece the JSON error answers rely on (checked, not assumed)."""
    return callable(getattr(RequestHandler, "handle_error", None))


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


class QuietParseErrors(logging.Filter):
    """One INFO line, without the request's bytes, instead of an ERROR with traceback per unparsable request."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "unparsable HTTP request from %s: %s", (peer, type(exc).__name__)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True
