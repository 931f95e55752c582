"""Benchmark: load N watch-only vpubs into one BTC daemon (regtest, offline); seconds per load, RSS per wallet.

Baseline, measured in the same run: the same N keys restored with Electrum alone (its own
``restore_wallet_from_text``, wallets kept open and listening, as Electrum's daemon keeps them),
so the ratio shows what the daemon's path (HTTP, single-flight, file storage, AdbRouter) costs or saves.

    .venv/bin/python bench/btc_wallets.py [N] [--no-baseline]     (default 200)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dispatch import rss_kib
from tests.btc_support import btc_daemon


def vpubs(count: int) -> list[str]:
    from electrum import bip32

    return [bip32.BIP32Node.from_rootseed(i.to_bytes(32, "big"), xtype="p2wpkh").to_xpub() for i in range(1, count + 1)]


async def through_daemon(count: int) -> tuple[float, float, list[str]]:
    async with btc_daemon() as d:
        keys = vpubs(count)
        await d.call("getbalance", xpub=keys[0])  # warm-up (imports, caches), then unloaded again
        await d.call("close_wallet", xpub=keys[0])
        before = rss_kib()
        start = time.perf_counter()
        for key in keys:
            await d.call("getbalance", xpub=key)
        elapsed = time.perf_counter() - start
        grown = rss_kib() - before
        assert d.daemon.wallet_loads == count + 1 and len(d.daemon.wallets) == count
        return elapsed / count, grown / count, keys


async def electrum_alone(keys: list[str]) -> tuple[float, float]:
    from electrum import constants, simple_config, util
    from electrum import wallet as electrum_wallet

    previous = constants.net
    constants.set_regtest()
    util._asyncio_event_loop = asyncio.get_running_loop()
    util.callback_mgr.asyncio_loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        config = simple_config.SimpleConfig({"electrum_path": tmp, "offline": True, "regtest": True})
        os.makedirs(os.path.join(tmp, "w"))
        wallets = []
        before = rss_kib()
        start = time.perf_counter()
        for index, key in enumerate(keys):
            path = os.path.join(tmp, "w", str(index))
            wallets.append(
                await asyncio.to_thread(
                    lambda k=key, p=path: electrum_wallet.restore_wallet_from_text(k, path=p, config=config)["wallet"]
                )
            )
            await asyncio.sleep(0)  # let the callbacks Electrum scheduled run, as they would in a daemon
        elapsed = time.perf_counter() - start
        grown = rss_kib() - before
        for wallet in wallets:
            await wallet.stop()
    constants.net = previous
    return elapsed / len(keys), grown / len(keys)


async def main(count: int, baseline: bool = True) -> None:
    per_load, per_wallet_kib, keys = await through_daemon(count)
    print(f"wallets loaded: {count} watch-only vpubs, regtest, offline")
    per_thousand_mib = per_wallet_kib * 1000 / 1024
    print(f"daemon (POST / getbalance, first use): {per_load * 1000:.1f} ms per wallet load, "
          f"{per_wallet_kib:.0f} KiB RSS per loaded wallet, {per_thousand_mib:.1f} MiB per 1,000")  # fmt: skip
    if not baseline:
        return
    base_load, base_kib = await electrum_alone(keys)
    print(f"Electrum alone (restore_wallet_from_text): {base_load * 1000:.1f} ms per wallet, {base_kib:.0f} KiB RSS")
    print(f"ratio daemon / Electrum alone: time {per_load / base_load:.2f}x")


if __name__ == "__main__":
    # --no-baseline: the daemon only (Electrum alone slows down with the square of the wallet count).
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    asyncio.run(main(int(numbers[0]) if numbers else 200, baseline="--no-baseline" not in sys.argv))
