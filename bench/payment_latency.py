"""Benchmark: payment detection latency, from a block being mined to new_payment reaching a websocket client.

On the regtest stack (regtest node + real ElectrumX + the BTC daemon, all on loopback): N requests on a
watch-only wallet, each paid from a funded seed wallet in the same daemon; once the daemon has reported the
payment as unconfirmed, one block is mined and the clock runs until the scoped websocket client receives
new_payment with status paid. Baseline, in the same run: the same block's `blockchain.headers.subscribe`
notification reaching a bare Electrum-protocol client of the same ElectrumX (the floor the backend sets).

    .venv/bin/python bench/payment_latency.py [N] [--electrumx-padding-wait SECONDS|default]   (N defaults to 20)

`--electrumx-padding-wait default` keeps ElectrumX's own 1 s hold-back of small replies (see
regtest/electrumx_launch.py); the stack's setting (0) is what the tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regtest.electrum_client import ElectrumClient
from regtest.stack import HOST, RegtestStack
from tests.btc_payment_support import (
    PAYER_SEED,
    PR_PAID,
    PR_UNCONFIRMED,
    fund_payer,
    online_daemon,
    open_feed,
    pay,
    payment_for,
)
from tests.btc_support import key_pair

PRICE = Decimal("0.001")


async def header_notification(client: ElectrumClient, height: int) -> float:
    """perf_counter() when the bare client is told about `height`."""
    while True:
        method, params = await client.notifications.get()
        if method == "blockchain.headers.subscribe" and params[0]["height"] >= height:
            return time.perf_counter()


async def measure(stack: RegtestStack, count: int) -> tuple[list[float], list[float]]:
    daemon_ms: list[float] = []
    baseline_ms: list[float] = []
    async with online_daemon(stack) as d, ElectrumClient() as bare:
        merchant = key_pair(900, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})
        miner = await fund_payer(d, stack, 101 + count)
        await bare.connect(HOST, stack.electrumx.port)
        await bare.request("blockchain.headers.subscribe")
        for _ in range(count):
            address = (await d.call("add_request", str(PRICE), "bench", xpub=merchant))["address"]
            await pay(d, address, PRICE)
            await feed.wait_for(payment_for(address, PR_UNCONFIRMED))
            height = await stack.arpc("getblockcount") + 1
            seen_by_bare = asyncio.create_task(header_notification(bare, height))
            await stack.arpc("generatetoaddress", 1, miner)
            mined = time.perf_counter()
            event = await feed.wait_for(payment_for(address, PR_PAID))
            daemon_ms.append((feed.arrival[event["id"]] - mined) * 1000)
            baseline_ms.append((await seen_by_bare - mined) * 1000)
        assert await d.call("getbalance", xpub=PAYER_SEED)
        await feed.close()
    return daemon_ms, baseline_ms


def report(count: int, padding: str, daemon_ms: list[float], baseline_ms: list[float]) -> None:
    med, worst = statistics.median(daemon_ms), max(daemon_ms)
    base_med, base_worst = statistics.median(baseline_ms), max(baseline_ms)
    print(f"payment detection latency, {count} payments, regtest stack, ElectrumX padding wait: {padding}")
    print(f"ElectrumX header notification (baseline): median {base_med:7.1f} ms   worst {base_worst:7.1f} ms")
    print(f"daemon new_payment on the websocket:      median {med:7.1f} ms   worst {worst:7.1f} ms")
    print(f"ratio daemon / baseline (medians): {med / base_med:.1f}x")
    print(f"target median < 1000 ms: {'met' if med < 1000 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=20)
    parser.add_argument("--electrumx-padding-wait", default="0")
    args = parser.parse_args()
    padding = None if args.electrumx_padding_wait == "default" else float(args.electrumx_padding_wait)
    with RegtestStack(padding_wait=padding) as stack:
        daemon_ms, baseline_ms = asyncio.run(measure(stack, args.count))
    report(args.count, args.electrumx_padding_wait, daemon_ms, baseline_ms)


if __name__ == "__main__":
    main()
