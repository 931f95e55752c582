"""Benchmark: N distinct watch-only vpubs asked for in turn, with and without MAX_WALLETS below N.

What item 4 of issue 12 bounds: every distinct key a client sends loads a wallet. The baseline,
measured in the same run, is a daemon whose cap is N (every wallet stays loaded); the other caps
at CAP, so the least recently used wallet is unloaded to make room for each new one. Each daemon
runs in its own process (RSS freed by one must not flatter the other).

    .venv/bin/python bench/btc_wallet_cap.py [N] [CAP]      (default 1000 100)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.btc_wallets import vpubs
from bench.dispatch import rss_kib
from tests.btc_support import btc_daemon


async def one_run(count: int, cap: int) -> dict[str, float]:
    async with btc_daemon({"MAX_WALLETS": str(cap), "WALLET_IDLE_TIMEOUT": "0"}) as d:
        keys = vpubs(count + 1)
        await d.call("getbalance", xpub=keys[-1])  # warm-up (imports, caches), then unloaded again
        await d.call("close_wallet", xpub=keys[-1])
        before = rss_kib()
        start = time.perf_counter()
        for key in keys[:count]:
            await d.call("getbalance", xpub=key)
        elapsed = time.perf_counter() - start
        return {
            "ms_per_load": elapsed / count * 1000,
            "rss_growth_mib": (rss_kib() - before) / 1024,
            "loaded": len(d.daemon.wallets),
        }


def run_in_child(count: int, cap: int) -> dict[str, float]:
    child = [sys.executable, __file__, "--one", str(count), str(cap)]
    result = subprocess.run(child, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(count: int, cap: int) -> None:
    uncapped = run_in_child(count, count)
    capped = run_in_child(count, cap)
    print(f"{count} distinct watch-only vpubs asked for in turn (getbalance), regtest, offline")
    for label, figures in ((f"MAX_WALLETS={count} (baseline)", uncapped), (f"MAX_WALLETS={cap}", capped)):
        per_1000 = figures["rss_growth_mib"] / count * 1000
        print(
            f"{label}: {figures['loaded']} loaded at the end, {figures['ms_per_load']:.1f} ms per load, "
            f"RSS +{figures['rss_growth_mib']:.1f} MiB ({per_1000:.1f} MiB per 1,000 wallets asked for)"
        )
    print(
        f"ratio capped / baseline: RSS growth {capped['rss_growth_mib'] / max(uncapped['rss_growth_mib'], 0.1):.2f}x, "
        f"time per load {capped['ms_per_load'] / uncapped['ms_per_load']:.2f}x"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(asyncio.run(one_run(int(sys.argv[2]), int(sys.argv[3])))))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 100)
