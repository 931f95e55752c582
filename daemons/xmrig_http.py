"""One HTTP/1.1 exchange with a miner over a plain asyncio connection: wire format only.

XMRig writes every ``/json_rpc`` answer twice on the same connection before closing it (6.26.0,
src/base/api/requests/HttpApiRequest.cpp: ``rpcDone`` ends the response, then ``done`` ends it again;
unchanged since 2019). aiohttp's client rejects the bytes that follow the first answer ("Data after
`Connection: close`"), although the miner obeyed. XMRig closes every connection after one answer, so a
connection pool gains nothing; this module sends one request with ``Connection: close``, reads exactly one
response (a Content-Length body, a chunked body, or up to the end of the stream) and ignores what follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from yarl import URL

MAX_HEAD = 64 * 1024  # status line and headers
MAX_BODY = 8 * 1024 * 1024  # XMRig's largest answer (/2/backends of a big GPU rig) is far below this
NO_BODY_STATUSES = {204, 304}


class HTTPProtocolError(Exception):
    """The peer's answer is not an HTTP/1.x response this client can read."""


@dataclass(frozen=True)
class HTTPAnswer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


def build_request(method: str, url: URL, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request's bytes: ``Host`` with the port, ``Connection: close``, Content-Length when there is a body."""
    host = url.host or ""
    authority = f"[{host}]:{url.port}" if ":" in host else f"{host}:{url.port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {authority}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head (without the blank line)."""
    try:
        text = head.decode("latin-1")
        status_line, *header_lines = text.split("\r\n")
        version, code, *_ = status_line.split(" ", 2)
        status = int(code)
    except ValueError as exc:
        raise HTTPProtocolError("the answer does not start with an HTTP status line") from exc
    if not version.startswith("HTTP/1.") or not 100 <= status <= 599:
        raise HTTPProtocolError("the answer does not start with an HTTP/1.x status line")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPProtocolError("malformed header line in the answer")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, status: int, headers: dict[str, str], method: str) -> bytes:
    """Exactly one response body; bytes after it (XMRig's second copy of a json_rpc answer) stay unread."""
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise HTTPProtocolError("bad Content-Length in the answer") from exc
        if not 0 <= length <= MAX_BODY:
            raise HTTPProtocolError(f"answer body of {length} bytes is out of bounds")
        return await reader.readexactly(length)
    body = await reader.read(MAX_BODY + 1)  # no length: the body runs to the end of the stream
    while len(body) <= MAX_BODY and (more := await reader.read(MAX_BODY + 1 - len(body))):
        body += more
    if len(body) > MAX_BODY:
        raise HTTPProtocolError("answer body too large")
    return body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HTTPProtocolError("bad chunk size in the answer") from exc
        if size == 0:
            return body
        if len(body) + size > MAX_BODY:
            raise HTTPProtocolError("answer body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the CRLF after each chunk


def client_tls(verify: bool) -> ssl.SSLContext:
    """TLS settings for https miners; ``verify=False`` accepts a self-signed certificate."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def exchange(
    base_url: str, method: str, path: str, headers: dict[str, str], body: bytes | None, verify_tls: bool = True
) -> HTTPAnswer:
    """Send one request to ``base_url`` and read one answer. Raises OSError, ssl.SSLError, HTTPProtocolError,
    asyncio.IncompleteReadError; the caller bounds the time."""
    url = URL(base_url)
    tls = client_tls(verify_tls) if url.scheme == "https" else None
    reader, writer = await asyncio.open_connection(url.host, url.port, ssl=tls, limit=MAX_HEAD)
    try:
        writer.write(build_request(method, url, path, headers, body))
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise HTTPProtocolError("answer headers too large") from exc
        status, answer_headers = parse_head(head[:-4])
        return HTTPAnswer(status, answer_headers, await read_body(reader, status, answer_headers, method))
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):  # the miner closes first; its answer is already read
            await writer.wait_closed()
