"""Answers that never reach a handler are JSON-RPC errors too (daemons/http_errors.py).

Unknown paths and methods (the router's 404 and 405), and requests the HTTP parser rejects (broken
framing: aiohttp's protocol answers 400 before any route runs), in-process and through ``BaseDaemon.run``
in a real process, whose log must get one line per such request, without the request's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage

from daemons.http_errors import QuietParseErrors, fits_this_aiohttp
from tests.sample_daemon import SampleDaemon
from tests.support import LOGIN, PASSWORD, ROOT, DaemonClient, free_port, prefixed, running_daemon, wait_until_answering

BAD_REQUEST = {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Bad HTTP request: Bad Request"}, "id": None}
CREDENTIALS = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
# Each is rejected by aiohttp's HTTP parser itself; the last quotes the credentials in aiohttp's message.
BROKEN = {
    "content-length not a number": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "two content-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "bad chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "bad request line": b"POST /  HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    "credentials in a broken header": b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization : Basic "
    + CREDENTIALS.encode()
    + b"\r\nContent-Length: 2\r\n\r\n{}",
}


async def exchange(url: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; the status, headers and body that come back. Fails unless the server then closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        received = await asyncio.wait_for(reader.read(), 10.0)  # read() returns only once the server closes
    finally:
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_this_aiohttp_has_what_the_json_answers_rely_on() -> None:
    assert fits_this_aiohttp()


@pytest.mark.parametrize("name", list(BROKEN))
async def test_broken_framing_gets_a_json_rpc_error_and_the_connection_is_closed(name: str) -> None:
    async with running_daemon(SampleDaemon) as d:
        status, headers, body = await exchange(d.url, BROKEN[name])  # and the server closed the connection
        assert (status, headers["content-type"].split(";")[0]) == (400, "application/json")
        assert json.loads(body) == BAD_REQUEST
        assert await d.call("add", 1, 2) == 3


async def test_unknown_paths_and_methods_get_json_rpc_errors() -> None:
    async with running_daemon(SampleDaemon) as d:
        cases = [("GET", "/", 405, "POST"), ("PUT", "/", 405, "POST"), ("POST", "/ws", 405, "GET, HEAD")]
        cases += [("DELETE", "/health", 405, "GET, HEAD"), ("GET", "/nope", 404, None), ("POST", "/x/y", 404, None)]
        for method, path, status, allow in cases:
            for headers in (d.headers, {}):  # the same with or without credentials: nothing to protect
                async with d.session.request(method, d.url + path, headers=headers) as response:
                    body = await response.json(content_type="application/json")
                    assert response.status == status, (method, path)
                    assert response.headers.get("Allow") == allow
                assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32600
                assert (path in body["error"]["message"]) == (status == 404)
        assert await d.call("add", 1, 2) == 3  # the real routes are untouched


def test_parse_errors_are_logged_as_one_line_without_the_request() -> None:
    secret = f"Authorization : Basic {CREDENTIALS}"
    exc = BadHttpMessage(f"Invalid header name:\n\n  b'{secret}'")
    record = logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("127.0.0.1",),
        (None, exc, None),
    )
    assert QuietParseErrors().filter(record)
    assert (record.levelname, record.exc_info) == ("INFO", None)
    assert record.getMessage() == "unparsable HTTP request from 127.0.0.1: BadHttpMessage"
    other = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", (), (None, ValueError(), None))
    assert QuietParseErrors().filter(other) and other.levelname == "ERROR" and other.exc_info is not None


SERVE_SAMPLE = "from tests.sample_daemon import SampleDaemon; SampleDaemon().run()"


async def test_the_real_server_answers_in_json_and_logs_no_request_bytes(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **prefixed("SAMPLE", {"HOST": "127.0.0.1", "PORT": str(port), "DATA_PATH": str(tmp_path)})}
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-c", SERVE_SAMPLE], env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        async with aiohttp.ClientSession() as session:
            d = DaemonClient(f"http://127.0.0.1:{port}", session)
            await wait_until_answering(d, process, 60.0)
            for raw in BROKEN.values():
                status, _, body = await exchange(d.url, raw)
                assert status == 400 and json.loads(body) == BAD_REQUEST
            async with session.get(d.url + "/nope") as response:
                assert response.status == 404 and (await response.json())["error"]["code"] == -32600
            assert await d.call("add", 1, 2) == 3
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0  # run() shuts down gracefully on SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log_path.read_text()
    assert text.count("unparsable HTTP request from 127.0.0.1") == len(BROKEN)
    assert "Traceback" not in text and CREDENTIALS not in text and PASSWORD not in text
