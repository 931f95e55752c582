"""Helpers for the BTC payment flow on the regtest stack: a funded seed wallet, websocket event feeds.

Shared by tests/test_btc_payments.py and bench/payment_latency.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from regtest.stack import RegtestStack
from tests.btc_support import btc_daemon
from tests.support import DaemonClient

# A throw-away Electrum segwit seed: its coins exist only on the test's own regtest chain.
PAYER_SEED = "kid secret cancel vacuum flock retire reunion bicycle noise kitten bicycle shoot"
EVENT_TIMEOUT = 90.0

PR_UNPAID, PR_EXPIRED, PR_PAID, PR_UNCONFIRMED = 0, 1, 3, 7  # Electrum's request statuses


@contextlib.asynccontextmanager
async def online_daemon(
    stack: RegtestStack, data_path: Path | None = None, **extra: str
) -> AsyncIterator[DaemonClient]:
    """An in-process BTC daemon on the stack's ElectrumX.

    Electrum 4.3.4's Network is a process-wide singleton that its stop() never releases, so a second daemon in
    the same process would trip its "Network is a singleton!" assertion: release it around each daemon (one
    daemon runs at a time in a test process).
    """
    import electrum.blockchain
    import electrum.network

    electrum.network._INSTANCE = None  # left behind by an earlier daemon of this process, if any
    # Electrum's header chains (the best one and its forks) are a module global too, filled from a data dir:
    # forks an earlier daemon saw (a reorg) would trip the next one's fork bookkeeping ("forkpoint of parent
    # chain (102) should be at lower height than children's (102)") and cut it off its server.
    electrum.blockchain.blockchains.clear()
    try:
        async with btc_daemon(online_env(stack, **extra), data_path=data_path) as d:
            yield d
    finally:
        electrum.network._INSTANCE = None
        electrum.blockchain.blockchains.clear()


def online_env(stack: RegtestStack, **extra: str) -> dict[str, str]:
    """The BTC daemon's settings for the stack's ElectrumX, and nothing else (SERVER + ONESERVER)."""
    return {
        "NETWORK": "regtest",
        "OFFLINE": "false",
        "SERVER": stack.electrum_server,
        "ONESERVER": "true",
        "SYNC_TIMEOUT": "60",
        **extra,
    }


async def eventually(check: Callable[[], Any], timeout: float = EVENT_TIMEOUT, interval: float = 0.05) -> Any:
    """Await `check()` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def fund_payer(d: DaemonClient, stack: RegtestStack, blocks: int = 101) -> str:
    """Mine `blocks` to the payer seed wallet and wait until the daemon's wallet sees mature coins."""
    address = await d.call("getunusedaddress", xpub=PAYER_SEED)
    await wait_synchronized(d)  # a wallet restored on a used chain must learn its old spends first
    before = Decimal((await d.call("getbalance", xpub=PAYER_SEED))["confirmed"])
    await stack.amine(blocks, address)

    async def funded() -> bool:
        balance = await d.call("getbalance", xpub=PAYER_SEED)
        return Decimal(balance["confirmed"]) > before and (await d.call("getinfo"))["synchronized"]

    await eventually(funded)
    return address


async def wait_synchronized(d: DaemonClient) -> None:
    """Until the daemon's headers and every loaded wallet are up to date with the server."""

    async def synchronized() -> bool:
        return (await d.call("getinfo"))["synchronized"]

    await eventually(synchronized)


async def pay(d: DaemonClient, address: str, amount: Decimal | str) -> str:
    """payto from the payer seed wallet (added to its history so the next payto picks other coins) + broadcast."""
    raw = await d.call("payto", address, str(amount), addtransaction=True, xpub=PAYER_SEED)
    return await d.call("broadcast", raw)


class EventFeed:
    """Every event one websocket receives, in order; `wait_for` looks at all of them so far, then waits."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self.messages: list[dict] = []
        self.arrival: dict[int, float] = {}  # event id -> time.perf_counter() when it arrived
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            body = json.loads(message.data)
            self.messages.append(body)
            now = time.perf_counter()
            for event in body.get("updates", []):
                self.arrival[event["id"]] = now
                self.events.append(event)
            self._changed.set()
        self._changed.set()

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = EVENT_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for event in self.events[checked:]:
                if predicate(event):
                    return event
            checked = len(self.events)
            if self._task.done():
                raise AssertionError(f"websocket closed; events so far: {self.events}")
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event within {timeout}s; events so far: {self.events}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def of(self, name: str) -> list[dict]:
        return [e for e in self.events if e["event"] == name]

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()


async def open_feed(d: DaemonClient, *scope: dict) -> EventFeed:
    """A websocket on the daemon, after sending each scope message ({"xpub": ...}, {"since": ...})."""
    ws = await d.ws_connect()
    for message in scope:
        await ws.send_json(message)
    return EventFeed(ws)


def payment_for(address: str, status: int) -> Callable[[dict], bool]:
    return lambda e: e["event"] == "new_payment" and e["address"] == address and e["status"] == status
