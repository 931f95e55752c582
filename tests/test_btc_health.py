"""BTC /health against a real regtest stack: ``ok`` only when the headers and the server's tip agree."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regtest.stack import RegtestStack
from tests.btc_payment_support import online_daemon
from tests.regtest_fixtures import Key
from tests.support import DaemonClient


async def health_when(
    d: DaemonClient, ready: Callable[[dict[str, Any]], bool], limit: float = 120.0
) -> tuple[int, Any]:
    """Poll /health until ``ready(body)`` (a guard against hanging, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        async with d.session.get(d.url + "/health") as response:
            status, body = response.status, await response.json()
        if ready(body):
            return status, body
        if loop.time() > deadline:
            raise AssertionError(f"/health never got there: {body}")
        await asyncio.sleep(0.2)


async def test_health_is_syncing_when_the_server_is_behind_our_headers(
    fresh_regtest_stack, electrum_regtest, tmp_path: Path
):
    """The issue's case: the chain was started anew (server at 0) under a daemon that kept 3 headers."""
    data = tmp_path / "btc"
    await fresh_regtest_stack.amine(3, Key.from_int(91).address)
    async with online_daemon(fresh_regtest_stack, data_path=data) as d:
        status, body = await health_when(d, lambda b: b.get("local_height") == 3)
        assert (status, body["status"], body["server_height"]) == (200, "ok", 3)
    await asyncio.to_thread(fresh_regtest_stack.stop)

    with RegtestStack() as new_chain:  # height 0, the same regtest genesis
        async with online_daemon(new_chain, data_path=data) as d:
            status, body = await health_when(d, lambda b: b.get("connected") is True)
            assert (body["local_height"], body["server_height"]) == (3, 0)
            assert (status, body["status"]) == (503, "syncing")
            # The new chain overtakes the old headers: Electrum follows it, and the heights agree again.
            await new_chain.amine(4, Key.from_int(92).address)
            # (ok already holds one block apart, while Electrum is still switching chains: wait for the switch)
            status, body = await health_when(d, lambda b: b["status"] == "ok" and b.get("local_height") == 4)
            assert (status, body["local_height"], body["server_height"]) == (200, 4, 4)
