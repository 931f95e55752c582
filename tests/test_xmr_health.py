"""XMR /health against a real monerod: ``syncing`` while monerod has not caught up with the network; and
the XMR figures of /metrics (wallet-rpc processes) with a real wallet-rpc."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from daemons.xmr import XMRDaemon
from tests.monero_fixtures import Keys, Monerod
from tests.support import DaemonClient, running_daemon
from tests.test_metrics import scrape, value


async def health(d: DaemonClient) -> tuple[int, dict[str, Any]]:
    async with d.session.get(d.url + "/health") as response:
        return response.status, await response.json()


async def test_health_is_syncing_until_monerod_is_synchronized(tmp_path: Path):
    monerod = Monerod(tmp_path)
    env = {"MONEROD_URL": monerod.url, "NETWORK": "regtest"}
    await asyncio.to_thread(monerod.start)  # offline: a chain of its own, synchronized by definition
    try:
        async with running_daemon(XMRDaemon, env=env) as d:
            status, body = await health(d)
            assert (status, body["status"], body["monerod"]) == (200, "ok", "ok"), body
            assert body["monerod_height"] == 1
            before = await scrape(d)
            assert value(before, "coin_daemon_xmr_wallet_rpc", state="ready") == 0
            # A spending wallet (view-only ones are served by the scanner): one wallet-rpc starts for it.
            await d.call("get_updates", xpub=Keys.random().spending)
            after = await scrape(d)
            assert value(after, "coin_daemon_xmr_wallet_rpc", state="ready") == 1
            assert value(after, "coin_daemon_xmr_wallet_rpc_starts") == 1
            assert value(after, "coin_daemon_wallets_loaded") == 1
            assert value(after, "coin_daemon_backend_height", kind="monerod_height") == 1
            await asyncio.to_thread(monerod.stop)
            # The same node online, looking for peers it has not found: the "height 1 of mainnet".
            monerod.offline = False
            await asyncio.to_thread(monerod.start)
            status, body = await health(d)
            assert (status, body["status"], body["monerod"]) == (503, "syncing", "ok"), body
    finally:
        await asyncio.to_thread(monerod.stop)
