"""Run a regtest node (chain + RPC server) inside an asyncio loop: used by the CLI and by in-process tests."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from .chain import Chain
from .methods import NodeMethods
from .rpc import RPCServer

log = logging.getLogger(__name__)


class RegtestNode:
    """A node listening on host:port; port 0 picks a free one (see .port after start)."""

    def __init__(
        self,
        datadir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str = "rpcuser",
        password: str = "rpcpassword",
        fee_rate: Decimal = Decimal("0.00002"),
        segwit: bool = True,
    ) -> None:
        self.chain = Chain(datadir, segwit)
        self.stopped = asyncio.Event()
        self.methods = NodeMethods(self.chain, fee_rate, on_stop=self.stopped.set)
        self.server = RPCServer(self.methods, user, password)
        self.host, self.port, self.user, self.password = host, port, user, password
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@{self.host}:{self.port}/"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.server.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("regtest node at height %d listening on %s:%d", self.chain.height, self.host, self.port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RegtestNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving and close the chain's Core kernel now: aiohttp's Application is cyclic garbage
        that still holds the chain (through the RPC handler) until a collection, and a kernel must not be
        destroyed by one (regtest/kernel.py _gc_paused)."""
        await self.stop()
        self.chain.close()
