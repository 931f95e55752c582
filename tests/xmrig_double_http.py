"""XMRig 6.26.0's HTTP wire format, byte for byte, for the miner double in tests/xmrig_double.py.

Copied from XMRig 6.26.0's sources and checked against a real 6.26.0 build:

* src/base/net/http/HttpResponse.cpp ``end``: ``HTTP/1.1 <code> <NAME>`` where NAME is llhttp's status name
  in upper case (``UNAUTHORIZED``, ``BAD_REQUEST``, ``NO_CONTENT``); headers from a ``std::map`` (so sorted by
  name); ``Content-Length`` only for a non-empty body; always ``Connection: close``, one request per connection.
* src/base/net/http/HttpApiResponse.cpp ``end``: the three CORS headers; for a status >= 400 the body gets
  ``status`` and ``error`` (the status name) unless already there; an empty object is sent as no body at all;
  bodies come from rapidjson's PrettyWriter (4-space indent, arrays of scalars on one line).
* src/base/api/requests/HttpApiRequest.cpp: every /json_rpc answer is written twice (``rpcDone`` ends the
  response and ``done`` ends it again) before the connection closes; ``WireServer`` sends what the handler
  returns, so the double returns two copies there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.listening import stop_accepting

STATUS_NAMES = {
    200: "OK",
    204: "NO_CONTENT",
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    415: "UNSUPPORTED_MEDIA_TYPE",
    503: "SERVICE_UNAVAILABLE",
}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, PUT, POST, DELETE",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}


def xmrig_json(value: Any, level: int = 0, nan_as: str = "null") -> str:
    """JSON as XMRig's PrettyWriter prints it (``nan_as="-nan"`` prints what XMRig before 6.22.2 could)."""
    pad, inner = "    " * level, "    " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        members = [f"{inner}{json.dumps(k)}: {xmrig_json(v, level + 1, nan_as)}" for k, v in value.items()]
        return "{\n" + ",\n".join(members) + "\n" + pad + "}"
    if isinstance(value, list):
        if any(isinstance(item, dict | list) for item in value):
            items = [inner + xmrig_json(item, level + 1, nan_as) for item in value]
            return "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return "[" + ", ".join(xmrig_json(item, level + 1, nan_as) for item in value) + "]"
    if isinstance(value, float) and value != value:
        return nan_as
    return json.dumps(value, ensure_ascii=False)


def http_response(status: int, body: str | None = None, api: bool = True) -> bytes:
    """One response as HttpResponse::end writes it (``api``: with HttpApiResponse's CORS headers)."""
    headers = dict(CORS_HEADERS) if api else {}
    if body:
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body.encode()))
    headers["Connection"] = "close"
    head = f"HTTP/1.1 {status} {STATUS_NAMES[status]}\r\n"
    head += "".join(f"{name}: {headers[name]}\r\n" for name in sorted(headers))
    return (head + "\r\n").encode() + (body or "").encode()


def api_response(status: int, doc: Any = None, nan_as: str = "null") -> bytes:
    """HttpApiResponse::end: error members added for status >= 400, an empty object sent without a body."""
    doc = {} if doc is None else doc
    if status >= 400 and isinstance(doc, dict):
        doc.setdefault("status", status)
        doc.setdefault("error", STATUS_NAMES[status])
    if isinstance(doc, dict) and not doc:
        return http_response(status)
    return http_response(status, xmrig_json(doc, nan_as=nan_as))


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased, as llhttp hands them to XMRig
    body: str = ""


Handler = Callable[[Request], Awaitable[list[bytes]]]


@dataclass
class WireServer:
    """A loopback TCP server that reads one request per connection, writes the handler's bytes and closes."""

    handler: Handler
    port: int
    ssl_context: ssl.SSLContext | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, ssl=self.ssl_context, reuse_address=True
        )

    async def stop(self) -> None:
        """Close the port and every open connection (a request being held gets no answer)."""
        if self._server is not None:
            await stop_accepting(self._server.sockets)
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await read_request(reader)
            if request is not None:
                for chunk in await self.handler(request):
                    writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request (XMRig reads the body by Content-Length); None for garbage."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head[:-4].split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = (await reader.readexactly(length)).decode() if length else ""
    return Request(parts[0], parts[1], headers, body)
