"""Carrying Electron Cash's callbacks from its threads to the daemon's event loop, in order.

Electron Cash calls its callbacks synchronously on its own threads (the network thread, wallet
threads, a worker running a command). Each callback is turned into a ``Report`` right there, while
the wallet state it describes is current, and handed to the loop with ``call_soon_threadsafe``:
one FIFO queue and one consumer task, so reports reach ``deliver`` in the order the threads made
them. Nothing here imports Electron Cash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    """One contract event and the durable fact that says whether it was already reported."""

    event: str
    fields: dict[str, Any]
    wallet: str | None
    kind: str  # ReportedState kind: block, tx, verified, request
    item: str
    value: str
    monotonic: bool = False  # blocks: report only heights above the highest one reported


@dataclass
class ThreadBridge:
    """A FIFO from any thread to one consumer coroutine on the loop."""

    loop: asyncio.AbstractEventLoop
    deliver: Callable[[Report], Awaitable[None]]
    _queue: asyncio.Queue[Report | None] = field(default_factory=asyncio.Queue)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.loop.create_task(self._consume())

    def submit(self, report: Report) -> None:
        """Thread-safe; callable from the loop's own thread too. Dropped once the loop is closed."""
        try:
            self.loop.call_soon_threadsafe(self._queue.put_nowait, report)
        except RuntimeError:  # the loop closed during shutdown: the event is for a daemon that is gone
            logger.debug("event %s dropped: the event loop is closed", report.event)

    async def stop(self) -> None:
        """Deliver what was queued before the call, then end the consumer."""
        if self._task is None:
            return
        # Behind the callbacks threads have already scheduled, so those are delivered first.
        self.loop.call_soon(self._queue.put_nowait, None)
        await self._task
        self._task = None

    async def _consume(self) -> None:
        while (report := await self._queue.get()) is not None:
            try:
                await self.deliver(report)
            except Exception:
                logger.exception("could not deliver the %s event", report.event)
