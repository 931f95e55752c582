"""Connections are bounded (issue 12, item 3): head and body deadlines, caps, descriptors.

In-process tests serve the real SampleDaemon and talk raw HTTP over real sockets; the descriptor
tests run the real ``python -m daemons xmrig`` (the cheapest daemon) under a lowered limit. Waits
are bounded only to turn a hang into a failure: nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.sample_daemon import SampleDaemon
from tests.support import LOGIN, PASSWORD, ROOT, DaemonClient, free_port, running_daemon

WAIT = 20.0  # seconds: a guard against hangs only
AUTH = "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()


def address(d: DaemonClient) -> tuple[str, int]:
    host, port = d.url.removeprefix("http://").split(":")
    return host, int(port)


async def open_raw(d: DaemonClient, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address(d)
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    async with asyncio.timeout(WAIT):
        return await reader.read()


async def test_a_head_sent_too_slowly_is_closed_at_the_header_deadline() -> None:
    async with running_daemon(SampleDaemon, env={"HEADER_TIMEOUT": "0.5"}) as d:
        reader, writer = await open_raw(d)
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                while True:  # one header line at a time, never the blank line that ends the head
                    await asyncio.sleep(0.1)
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()

        trickling = asyncio.create_task(trickle())
        try:
            assert await closed_by_server(reader) == b""
        finally:
            trickling.cancel()
        silent_reader, _ = await open_raw(d)  # a connection that never sends anything
        assert await closed_by_server(silent_reader) == b""
        assert d.daemon.guard.timed_out == 2
        assert (await d.session.get(d.url + "/health")).status == 200  # a prompt request is served


async def test_a_body_not_sent_in_time_is_408_and_the_connection_closes() -> None:
    async with running_daemon(SampleDaemon, env={"BODY_TIMEOUT": "0.5"}) as d:
        reader, writer = await open_raw(d)
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\nContent-Length: 100\r\n\r\n"
        writer.write(head.encode() + b'{"jsonrpc"')
        answer = await closed_by_server(reader)
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408")
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"]["code"] == -32600 and "not received" in body["error"]["message"]


async def test_at_the_cap_idle_connections_make_room_for_a_normal_call() -> None:
    async with running_daemon(SampleDaemon, env={"MAX_CONNECTIONS": "8"}) as d:
        slow = [await open_raw(d) for _ in range(30)]
        for _, writer in slow:
            writer.write(b"GET /health HTTP/1.1\r\n")  # heads that never end
        assert await d.call("help")  # a normal call gets in: the oldest idle connection made room
        guard = d.daemon.guard
        assert len(guard.open) <= 8 and guard.evicted >= 22 and guard.refused == 0


async def test_when_every_connection_is_busy_a_new_one_gets_a_json_503() -> None:
    async with running_daemon(SampleDaemon, env={"MAX_CONNECTIONS": "3"}) as d:
        sockets = [await d.ws_connect() for _ in range(3)]  # inside a request for as long as they are open
        reader, _writer = await open_raw(d)
        answer = await closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 503")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == -32603
        assert d.daemon.guard.refused == 1
        for ws in sockets:
            await ws.close()


async def test_one_peer_cannot_take_every_connection() -> None:
    async with running_daemon(SampleDaemon, env={"MAX_CONNECTIONS_PER_PEER": "4"}) as d:
        other_peer = [await open_raw(d, source="127.0.0.2") for _ in range(12)]
        for _, writer in other_peer:
            writer.write(b"GET /health HTTP/1.1\r\n")
        assert await d.call("help")  # 127.0.0.1 has its own allowance
        await asyncio.sleep(0)
        assert d.daemon.guard.per_peer["127.0.0.2"] <= 4
        assert d.daemon.guard.evicted >= 8


# -- descriptors, in the real daemon process -----------------------------------------------------


def xmrig_env(data_path: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XMRIG_HOST": "127.0.0.1",
        "XMRIG_PORT": str(port),
        "XMRIG_DATA_PATH": str(data_path),
        "XMRIG_MINERS": "[]",
    }


@contextlib.asynccontextmanager
async def daemon_process(
    argv: list[str], env: dict[str, str], port: int, log: Path, **popen: Any
) -> AsyncIterator[Any]:
    """A daemon process, once it answers /health: (process, a client session)."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=out, **popen)
    try:
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(60):
                while True:
                    assert process.poll() is None, log.read_text()
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"http://127.0.0.1:{port}/health") as response:
                            await response.read()
                            break
                    await asyncio.sleep(0.1)
            yield process, session
    finally:
        process.terminate()
        process.wait(timeout=30)


def lowered_soft_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


async def test_the_daemon_raises_its_descriptor_soft_limit_to_the_hard_limit(tmp_path: Path) -> None:
    port, argv = free_port(), [sys.executable, "-m", "daemons", "xmrig"]
    env = xmrig_env(tmp_path / "data", port)
    async with daemon_process(argv, env, port, tmp_path / "log", preexec_fn=lowered_soft_limit) as (process, _):
        limits = Path(f"/proc/{process.pid}/limits").read_text()
    soft, hard = next(line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files"))
    assert soft == hard, limits


# Runs the daemon with a hard limit of 100 descriptors of which 70 are taken, as wallets and backends
# would take them: the cap (100 - 64 reserved = 36) is above what is left, so accepting runs out.
EXHAUSTED = """
import os, resource, runpy, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(70)]
sys.argv = ["daemons", "xmrig"]
runpy.run_module("daemons", run_name="__main__")
"""


async def test_running_out_of_descriptors_is_logged_once_not_per_accept(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "log"
    argv = [sys.executable, "-c", EXHAUSTED]
    async with daemon_process(argv, xmrig_env(tmp_path / "data", port), port, log) as (_, session):
        flood = []
        for _ in range(40):
            with contextlib.suppress(OSError):
                flood.append(await asyncio.open_connection("127.0.0.1", port))
        async with asyncio.timeout(WAIT):
            while "cannot accept connections" not in log.read_text():
                await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # asyncio retries a failed accept every second: let it fail a few times
        for _, writer in flood:
            writer.close()
        async with asyncio.timeout(WAIT):  # served again once descriptors are free
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/health") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
    text = log.read_text()
    assert text.count("cannot accept connections") == 1, text
    assert "out of system resource" not in text and "Traceback" not in text, text
