"""Benchmark: Lightning payment detection latency next to on-chain detection, in the same run.

On the regtest stack, two BTC daemons as Lightning nodes (tests/btc_lightning_support.py): a merchant
(subprocess, listening) and a payer (in-process) with a channel to it. N Lightning invoices made on the
merchant are paid with `lnpay` on the payer; the clock runs from `lnpay`'s answer reaching the payer's client
to `new_payment` status 3 reaching the merchant's websocket client. A negative figure means the merchant
reported the payment before the payer's call had returned (the merchant settles first, then the payer learns
the preimage). Baseline in the same run: N on-chain requests of the same merchant wallet, paid from the payer
and confirmed by one mined block; the clock runs from the block being mined to `new_payment` status 3.

    .venv/bin/python bench/lightning_latency.py [N]   (N defaults to 20)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regtest.stack import RegtestStack
from tests.btc_lightning_support import MERCHANT_SEED, MINER, PR_PAID, PRICE, Merchant, fund, open_channel, payer_daemon
from tests.btc_payment_support import PAYER_SEED, PR_UNCONFIRMED, open_feed, pay, payment_for


async def measure(stack: RegtestStack, count: int, tmp: Path) -> tuple[list[float], list[float], list[float]]:
    lightning_ms: list[float] = []
    call_ms: list[float] = []
    onchain_ms: list[float] = []
    async with payer_daemon(stack) as payer:
        await fund(payer, stack, 4244, 101 + count)
        async with Merchant(stack, tmp).running() as merchant:
            feed = await open_feed(merchant, {"xpub": MERCHANT_SEED})
            await open_channel(stack, payer, merchant, feed)
            for n in range(count):
                invoice = await merchant.call("add_request", str(PRICE), f"ln {n}", lightning=True, xpub=MERCHANT_SEED)
                started = time.perf_counter()
                await payer.call("lnpay", invoice["lightning_invoice"], xpub=PAYER_SEED)
                returned = time.perf_counter()
                event = await feed.wait_for(payment_for(invoice["rhash"], PR_PAID))
                lightning_ms.append((feed.arrival[event["id"]] - returned) * 1000)
                call_ms.append((returned - started) * 1000)
            for n in range(count):
                request = await merchant.call("add_request", str(PRICE), f"chain {n}", xpub=MERCHANT_SEED)
                await pay(payer, request["address"], PRICE)
                await feed.wait_for(payment_for(request["address"], PR_UNCONFIRMED))
                await stack.arpc("generatetoaddress", 1, MINER[0])
                mined = time.perf_counter()
                event = await feed.wait_for(payment_for(request["address"], PR_PAID))
                onchain_ms.append((feed.arrival[event["id"]] - mined) * 1000)
            await feed.close()
    return lightning_ms, call_ms, onchain_ms


def line(name: str, values: list[float]) -> str:
    return f"{name:<48} median {statistics.median(values):8.1f} ms   worst {max(values):8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=20)
    args = parser.parse_args()
    with RegtestStack() as stack, tempfile.TemporaryDirectory() as tmp:
        lightning_ms, call_ms, onchain_ms = asyncio.run(measure(stack, args.count, Path(tmp)))
    print(f"payment detection latency, {args.count} payments each way, regtest stack, one merchant wallet")
    print(line("on-chain: block mined -> new_payment 3 (baseline)", onchain_ms))
    print(line("lightning: lnpay returned -> new_payment 3", lightning_ms))
    print(line("lightning: lnpay called -> new_payment 3", [c + w for c, w in zip(call_ms, lightning_ms, strict=True)]))
    print(line("lightning: lnpay call (payer's round trip)", call_ms))


if __name__ == "__main__":
    main()
