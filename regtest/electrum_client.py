"""A minimal Electrum-protocol client (newline-delimited JSON-RPC 2.0 over TCP), to watch ElectrumX.

Enough to wait for ElectrumX to index a height and to check balances in tests; the payment daemons use the
Electrum library's own network code instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import socket
from typing import Any

__all__ = ["ElectrumClient", "ElectrumError", "request_sync", "scripthash"]


class ElectrumError(Exception):
    """An error object returned by the server."""


def scripthash(script: bytes) -> str:
    """The Electrum protocol's script hash: sha256 of the scriptPubKey, byte-reversed, hex."""
    return hashlib.sha256(script).digest()[::-1].hex()


class ElectrumClient:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self.notifications: asyncio.Queue[tuple[str, list]] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None

    async def connect(self, host: str, port: int, timeout: float = 10.0) -> ElectrumClient:
        self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        self._task = asyncio.create_task(self._read_loop())
        await self.request("server.version", "regtest-stack", "1.4")
        return self

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                msg = json.loads(line)
                if "id" in msg and msg["id"] in self._pending:
                    fut = self._pending.pop(msg["id"])
                    if not fut.done():
                        if msg.get("error"):
                            fut.set_exception(ElectrumError(msg["error"]))
                        else:
                            fut.set_result(msg.get("result"))
                elif "method" in msg:
                    self.notifications.put_nowait((msg["method"], msg.get("params", [])))
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("electrum server closed the connection"))
            self._pending.clear()

    async def request(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        if self._writer is None:
            raise ConnectionError("not connected")
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(
            json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}).encode() + b"\n"
        )
        await self._writer.drain()
        return await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
        self._writer = None

    async def __aenter__(self) -> ElectrumClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def request_sync(host: str, port: int, method: str, *params: Any, timeout: float = 5.0) -> Any:
    """One request on a fresh blocking connection (for code outside an event loop, e.g. launchers).

    ElectrumX 2 answers nothing before `server.version`, and may push notifications first, so replies are
    matched by id.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        calls = [("server.version", ["regtest-stack", "1.4"]), (method, list(params))]
        sock.sendall(
            b"".join(
                json.dumps({"jsonrpc": "2.0", "id": n, "method": m, "params": p}).encode() + b"\n"
                for n, (m, p) in enumerate(calls)
            )
        )
        with sock.makefile("rb") as stream:
            for line in stream:
                msg = json.loads(line)
                if msg.get("id") == 1:
                    if msg.get("error"):
                        raise ElectrumError(msg["error"])
                    return msg.get("result")
    raise ConnectionError("electrum server closed the connection")
