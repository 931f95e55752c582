"""Helpers that run real daemons for tests and benchmarks: in-process or as a subprocess.

Nothing here fakes a daemon: ``running_daemon`` serves the real aiohttp application on a free
loopback port, ``spawned_daemon`` runs ``python -m daemons <name>`` so a test can SIGKILL it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from daemons.base import BaseDaemon
from daemons.jsonrpc import RPCError

LOGIN, PASSWORD = "electrum", "electrumz"
NO_ENV_FILE = Path("/nonexistent/.env")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Send `sig` to a child still running and reap it; killed if it has not exited within `timeout` s."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class DaemonClient:
    """A JSON-RPC client of one running daemon, with the daemon's URL and credentials."""

    url: str
    session: aiohttp.ClientSession
    auth: aiohttp.BasicAuth = field(default_factory=lambda: aiohttp.BasicAuth(LOGIN, PASSWORD))
    daemon: Any = None
    _next_id: int = 0

    async def raw(self, payload: Any) -> tuple[int, Any]:
        async with self.session.post(self.url + "/", json=payload, headers=self.headers) as response:
            text = await response.text()
            return response.status, (await response.json(content_type=None)) if text else None

    async def call(self, method: str, *args: Any, xpub: Any = None, **kwargs: Any) -> Any:
        """Call a method the way the bitcart SDK does; an error object raises RPCError."""
        if xpub is not None:
            kwargs["xpub"] = xpub
        params: Any = [*args, kwargs] if args and kwargs else list(args) if args else kwargs
        self._next_id += 1
        _, body = await self.raw({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        if "error" in body:
            raise RPCError(body["error"]["code"], body["error"]["message"])
        return body["result"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.auth.encode()}

    def ws_connect(self, **kwargs: Any) -> Any:
        return self.session.ws_connect(self.url + "/ws", headers=self.headers, **kwargs)


def prefixed(name: str, env: Mapping[str, str]) -> dict[str, str]:
    return {f"{name}_{key}": str(value) for key, value in env.items()}


@contextlib.asynccontextmanager
async def running_daemon(
    cls: type[BaseDaemon], env: Mapping[str, str] | None = None, data_path: Path | None = None
) -> AsyncIterator[DaemonClient]:
    """Serve a daemon in this process on a free loopback port; ``env`` keys have no prefix."""
    with contextlib.ExitStack() as stack:
        if data_path is None:
            data_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="daemon-test-")))
        settings = {"HOST": "127.0.0.1", "PORT": "0", "DATA_PATH": str(data_path), **(env or {})}
        daemon = cls(environ=prefixed(cls.name, settings), env_file=NO_ENV_FILE)
        runner = daemon.make_runner()
        await runner.setup()
        try:
            site = web.TCPSite(runner, daemon.settings.host, daemon.settings.port)
            await site.start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as session:
                yield DaemonClient(f"http://127.0.0.1:{port}", session, daemon=daemon)
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def spawned_daemon(
    name: str,
    env: Mapping[str, str],
    data_path: Path,
    port: int | None = None,
    timeout: float = 60.0,
    module: str = "daemons",
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[DaemonClient, subprocess.Popen[bytes]]]:
    """Run ``python -m <module> <name>`` as a subprocess (so a test can SIGKILL it) and wait until it answers.

    ``env`` keys get the daemon's prefix; ``extra_env`` is passed as it is (a test module's own switches)."""
    port = port or free_port()
    prefix = name.upper()
    child_env = {
        **os.environ,
        **prefixed(prefix, {"HOST": "127.0.0.1", "PORT": str(port), "DATA_PATH": str(data_path), **env}),
        **(extra_env or {}),
    }
    log = open(data_path.parent / f"{name}-{port}.log", "ab")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen([sys.executable, "-m", module, name], env=child_env, cwd=ROOT, stdout=log, stderr=log)
    try:
        async with aiohttp.ClientSession() as session:
            client = DaemonClient(f"http://127.0.0.1:{port}", session)
            await wait_until_answering(client, process, timeout)
            yield client, process
    finally:
        stop_process(process)
        log.close()


async def wait_until_answering(client: DaemonClient, process: subprocess.Popen[bytes], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with code {process.returncode} before answering")
        with contextlib.suppress(aiohttp.ClientError):
            async with client.session.get(client.url + "/health") as response:
                await response.read()
                return
        await asyncio.sleep(0.1)
    raise TimeoutError("daemon did not answer in time")
