"""Benchmark of the XMR daemon against real regtest monerod and monero-wallet-rpc, in one run:

1. latency: median of get_height and getbalance through the daemon (POST /) against the same calls made
   directly to the same wallet-rpc process (baseline; target ratio <= 1.2). Both with the same code in this
   process (``post``: a plain aiohttp POST on one keep-alive session per path, Basic auth to the daemon,
   digest auth to wallet-rpc with its nonce cached), and the daemon in this process too. The daemon answers
   those two from its poller's snapshot (daemons/xmr_snapshot.py); the pass-through get_balance, which always
   asks wallet-rpc, and the floor of the daemon hop (getconfig, no backend call) are shown beside them;
2. payment detection: from the moment the confirming block exists (generateblocks returned) to the
   websocket's new_payment "paid" event, median and worst of 20 payments, default poll settings; baseline:
   one refresh + get_transfers round made directly, the least any poller of wallet-rpc must spend;
3. loading N view-only wallets (first request of each, all at once), wall time and memory (daemon + its
   wallet-rpc children), in the chosen design (one wallet-rpc per wallet) and in a pool of 4 processes that
   switch wallets; then one getbalance round over all N wallets in each, which is where switching costs.

    .venv/bin/python bench/xmr_bench.py [N [PARTS]]      (default 50 wallets, parts 123)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dispatch import rss_kib
from daemons.xmr import XMRDaemon
from tests.monero_fixtures import Chain, Keys, WalletRPC, funded_chain, json_rpc
from tests.support import DaemonClient, running_daemon

LATENCY_CALLS = 200
PAYMENTS = 20


def total_rss(d: DaemonClient) -> int:
    return rss_kib() + sum(rss_kib(p.pid) for p in d.daemon.pool.processes() if p.pid)


def env_for(chain: Chain, **extra: str) -> dict[str, str]:
    return {"MONEROD_URL": chain.monerod.url, "NETWORK": "regtest", "SCANNER": "false", **extra}


async def post(session: aiohttp.ClientSession, url: str, method: str, params: Any, headers: Any = None) -> Any:
    """The one JSON-RPC client of part 1, used for both paths: a plain aiohttp POST on a keep-alive session."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with session.post(url, json=payload, headers=headers) as response:
        body = await response.json(content_type=None)
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


async def latency(chain: Chain) -> None:
    """Both paths: the same ``post`` in this process, one long-lived session each (keep-alive, auth cached).

    Default poll settings, so the wallet's poller runs (and replaces the snapshot) as in production. The
    pass-through ``get_balance`` always goes to wallet-rpc: it shows what a proxied call costs.
    """
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(chain)) as d:
        await d.call("getbalance", xpub=view.view_only)  # loads the wallet, starts its wallet-rpc
        (wallet,) = d.daemon.wallets.values()
        async with asyncio.timeout(60):
            while d.daemon.snapshot(wallet) is None:  # the poller's first round after the wallet opened
                await asyncio.sleep(0.05)
        wallet_rpc = d.daemon.pool.processes()[0].client
        assert wallet_rpc is not None
        daemon_url, headers, xpub = d.url + "/", d.headers, {"xpub": view.view_only}
        wallet_url = wallet_rpc.url + "/json_rpc"
        async with aiohttp.ClientSession() as to_daemon, wallet_rpc.new_session() as to_wallet:
            cases = {
                "get_height": (
                    lambda: post(to_daemon, daemon_url, "get_height", xpub, headers),
                    lambda: post(to_wallet, wallet_url, "get_height", {}),
                ),
                "getbalance": (
                    lambda: post(to_daemon, daemon_url, "getbalance", xpub, headers),
                    lambda: post(to_wallet, wallet_url, "get_balance", {"account_index": 0}),
                ),
                "get_balance (proxied)": (
                    lambda: post(to_daemon, daemon_url, "get_balance", {**xpub, "account_index": 0}, headers),
                    lambda: post(to_wallet, wallet_url, "get_balance", {"account_index": 0}),
                ),
            }
            print("\n1. latency (median of", LATENCY_CALLS, "calls, alternating, after 20 warm-up calls each)")
            print(f"{'method':22} {'through daemon':>15} {'wallet-rpc direct':>18} {'ratio':>7}")
            for name, (through, straight) in cases.items():
                ma, mb = await alternate(through, straight)
                print(f"{name:22} {ma * 1000:12.2f} ms {mb * 1000:15.2f} ms {ma / mb:6.2f}x")
            floor, _ = await alternate(lambda: post(to_daemon, daemon_url, "getconfig", ["lightning"], headers), None)
            print(f"floor: getconfig through the daemon (no backend call) {floor * 1000:.2f} ms")
            served = d.daemon.snapshot(wallet) is not None
            print(f"snapshot still served at the end (poller rounds replaced it meanwhile): {served}")


async def alternate(first: Any, second: Any) -> tuple[float, float]:
    """Medians of ``first`` and ``second`` (None: only ``first``), called in turn after a warm-up."""
    calls = [call for call in (first, second) if call is not None]
    timings: list[list[float]] = [[] for _ in calls]
    for index in range(LATENCY_CALLS + 20):
        for call, times in zip(calls, timings, strict=True):
            start = time.perf_counter()
            await call()
            if index >= 20:
                times.append(time.perf_counter() - start)
    medians = [statistics.median(times) for times in timings]
    return medians[0], medians[-1]


async def detection(chain: Chain) -> None:
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(chain, CONFIRMATIONS="1")) as d:
        await d.call("getbalance", xpub=view.view_only)
        direct = d.daemon.pool.processes()[0].client
        assert direct is not None
        delays = []
        async with d.ws_connect() as ws:
            await ws.send_json({"xpub": view.view_only})
            for _ in range(PAYMENTS):
                request = await d.call("add_request", "0.01", "bench", 900, xpub=view.view_only)
                await chain.pay_async(request["address"], "0.01")
                await wait_status(ws, request["address"], 7)
                await chain.mine_async(1)
                block_time = time.perf_counter()
                await wait_status(ws, request["address"], 3)
                delays.append(time.perf_counter() - block_time)
        rounds = []
        for _ in range(20):
            start = time.perf_counter()
            await direct.call("refresh")
            await direct.call("get_transfers", {"in": True, "pool": True})
            rounds.append(time.perf_counter() - start)
    median, worst, floor = statistics.median(delays), max(delays), statistics.median(rounds)
    print(f"\n2. payment detection, confirming block -> websocket 'paid' ({PAYMENTS} payments, default poll settings)")
    print(f"median {median:.2f} s, worst {worst:.2f} s; direct refresh+get_transfers round {floor:.2f} s")
    print(f"ratio median / direct round: {median / floor:.1f}x")


async def wait_status(ws: Any, address: str, status: int) -> None:
    async with asyncio.timeout(120):
        while True:
            message = await ws.receive_json()
            for event in message["updates"]:
                if event["event"] == "new_payment" and event["address"] == address and event["status"] == status:
                    return


async def loading(chain: Chain, count: int, max_processes: int, label: str) -> None:
    wallets = [Keys.random() for _ in range(count)]
    settings = env_for(chain, MAX_WALLET_RPC=str(max_processes), POLL_INTERVAL="3600")
    async with running_daemon(XMRDaemon, env=settings) as d:
        before = total_rss(d)
        start = time.perf_counter()
        await asyncio.gather(*(d.call("getbalance", xpub=w.view_only) for w in wallets))
        loaded = time.perf_counter() - start
        after = total_rss(d)
        switches = d.daemon.pool.switches
        start = time.perf_counter()
        await asyncio.gather(*(d.call("getbalance", xpub=w.view_only) for w in wallets))
        round_time = time.perf_counter() - start
        processes = len(d.daemon.pool.processes())
        switched = d.daemon.pool.switches - switches
    print(
        f"{label:34} {loaded:8.1f} s {loaded / count * 1000:8.0f} ms {(after - before) / 1024:9.0f} MiB"
        f" {processes:5d} {round_time:10.2f} s {switched:6d}"
    )


async def baseline_loading(chain: Chain, count: int) -> None:
    """The floor: one plain wallet-rpc generating the same kind of wallets one after the other."""
    wallets = [Keys.random() for _ in range(count)]
    wallet_rpc = WalletRPC(chain.root, chain.monerod.url)
    await asyncio.to_thread(wallet_rpc.start)
    try:
        start = time.perf_counter()
        for i, keys in enumerate(wallets):
            params = {"filename": f"b{i}", "password": "", "address": keys.address, "viewkey": keys.view_key}
            height = chain.monerod.height() - 20
            await asyncio.to_thread(
                json_rpc, wallet_rpc.url, "generate_from_keys", {**params, "restore_height": height}
            )
        loaded = time.perf_counter() - start
        assert wallet_rpc.process is not None
        memory = rss_kib(wallet_rpc.process.pid) / 1024
    finally:
        wallet_rpc.stop()
    print(
        f"{'one wallet-rpc, generate_from_keys':34} {loaded:8.1f} s {loaded / count * 1000:8.0f} ms {memory:9.0f} MiB"
    )


async def main(count: int, parts: str = "123") -> None:
    with funded_chain("xmr-bench-", payer_blocks=60) as chain:
        if "1" in parts:
            await latency(chain)
        if "2" in parts:
            await detection(chain)
        if "3" not in parts:
            return
        print(f"\n3. loading {count} view-only wallets at once, then one getbalance round over all of them")
        columns = ("load", 10), ("per wallet", 11), ("memory", 13), ("procs", 5), ("round", 12), ("switches", 6)
        print(f"{'design':34} " + " ".join(f"{name:>{width}}" for name, width in columns))
        await loading(chain, count, count, "one wallet-rpc per wallet (chosen)")
        await loading(chain, count, 4, "pool of 4 wallet-rpc, switching")
        await baseline_loading(chain, count)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, sys.argv[2] if len(sys.argv) > 2 else "123"))
