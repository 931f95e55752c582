"""Benchmark: validateaddress throughput through the BTC daemon (POST /) against Electrum's command called directly.

Both in the same run and process, on regtest offline: the ratio is the cost of the daemon's HTTP,
JSON-RPC parsing, auth and dispatch around one cheap Electrum command.

    .venv/bin/python bench/btc_validateaddress.py [N] [CONCURRENCY]      (defaults 3000, 20)
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.btc_support import btc_daemon, key_pair


async def run(count: int, concurrency: int) -> None:
    async with btc_daemon() as d:
        address = key_pair(1, "p2wpkh").first_address()
        commands = d.daemon.commands

        start = time.perf_counter()
        for _ in range(count):
            assert await commands.validateaddress(address) is True
        direct = count / (time.perf_counter() - start)

        start = time.perf_counter()
        for _ in range(count):
            assert await d.call("validateaddress", address) is True
        sequential = count / (time.perf_counter() - start)

        async def worker(calls: int) -> None:
            for _ in range(calls):
                assert await d.call("validateaddress", address) is True

        start = time.perf_counter()
        await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
        concurrent = (count // concurrency * concurrency) / (time.perf_counter() - start)

    print(f"validateaddress, {count} calls, regtest offline")
    print(f"Electrum command called directly:       {direct:10.0f} calls/s")
    print(f"through the daemon, one client:         {sequential:10.0f} calls/s  ({sequential / direct:.4f}x direct)")
    print(f"through the daemon, {concurrency} concurrent:      {concurrent:10.0f} calls/s  "
          f"({concurrent / direct:.4f}x direct)")  # fmt: skip


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    asyncio.run(run(n, c))
