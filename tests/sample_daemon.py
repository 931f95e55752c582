"""A test-only daemon that exercises every part of the core without a coin behind it."""

from __future__ import annotations

import asyncio
import base64
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemons.base import BaseDaemon, RPCError, WalletIdentity, rpc


class SampleWallet:
    def __init__(self, key: str) -> None:
        self.key = key
        self.balance = Decimal("0")


class SampleDaemon(BaseDaemon):
    """Methods of every kind the core must dispatch: positional, named, wallet, network, errors."""

    name = "SAMPLE"
    DEFAULT_PORT = 5999
    SPEC_DIR = Path(__file__).parent / "spec"

    def load_settings(self) -> None:
        super().load_settings()
        self.load_delay = self.env("LOAD_DELAY", cast=float, default=0.0)
        self.loads = 0
        self.network_ready = True

    async def load_wallet(self, identity: WalletIdentity) -> SampleWallet:
        self.loads += 1
        await asyncio.sleep(self.load_delay)
        if identity.key.startswith("bad"):
            raise ValueError("Invalid master key")
        return SampleWallet(identity.key)

    async def wait_network_ready(self) -> None:
        if not self.network_ready:
            raise RPCError(-32100, "Network not ready")

    @rpc(aliases=("add",))
    async def add_numbers(self, a: int, b: int = 0) -> int:
        """Add two integers."""
        return a + b

    @rpc
    async def echo(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Return what was passed."""
        return {"args": list(args), "kwargs": kwargs}

    @rpc
    def sync_concat(self, left: str, right: str) -> str:
        return left + right

    @rpc(requires_wallet=True)
    async def getbalance(self, wallet: SampleWallet) -> dict[str, str]:
        return {"confirmed": str(wallet.balance)}

    @rpc(requires_wallet=True)
    async def deposit(self, wallet: SampleWallet, amount: Decimal) -> str:
        wallet.balance += amount
        await self.notify("new_payment", {"amount": str(amount)}, wallet=wallet.key)
        return str(wallet.balance)

    @rpc
    async def broadcast_block(self, height: int) -> int:
        return await self.notify("new_block", {"height": height})

    @rpc
    async def emit(self, wallet_key: str, count: int = 1) -> list[int]:
        return [await self.notify("tick", {"n": n}, wallet=wallet_key) for n in range(count)]

    @rpc
    async def emit_padded(self, wallet_key: str | None = None, count: int = 1, size: int = 1024) -> list[int]:
        """Events carrying ``size`` characters of random (incompressible) padding, to fill socket buffers."""
        ids = []
        for n in range(count):
            padding = base64.b64encode(os.urandom(size)).decode()[:size]
            ids.append(await self.notify("padded", {"n": n, "padding": padding}, wallet=wallet_key))
        return ids

    @rpc(requires_network=True)
    async def getheight(self) -> int:
        return 100

    @rpc
    async def fail_mapped(self) -> None:
        raise Exception("Insufficient funds in the wallet")

    @rpc
    async def fail_bug(self) -> None:
        raise ZeroDivisionError("division by zero")
