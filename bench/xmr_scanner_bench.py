"""Benchmark of the XMR scanner (daemons/xmr_scanner.py), in one run against real regtest monerod:

1. curve arithmetic per operation, libsodium through PyNaCl (what the scanner uses) against pure-Python
   big-integer ed25519 (written below from RFC 8032's formulas; the monero package's own ed25519 calls
   libsodium since 1.0, so it cannot serve as the pure-Python side): the derivation ``8·a·R`` and a whole
   2-output transaction checked for one wallet;
2. loading N watch-only wallets into one daemon (the first add_request of each, one after the other, as
   the bitcart SDK sends them): time per wallet (median, worst) and the process's RSS before and after;
3. scan time of a block holding T transactions (2 outputs each, view tags) for W wallets, the CPU part of a
   round, without the pool cache (a block whose transactions were not seen in the pool);
4. detection latency of 20 payments to random requests among the N wallets: from the moment monerod has the
   transaction (wallet-rpc's transfer returned: relayed) to the websocket's new_payment (status 7), and from
   the block (generateblocks returned) to "paid" (status 3, CONFIRMATIONS=1); beside it, in the same run,
   today's per-process design (XMR_SCANNER=false: one wallet-rpc per wallet) with as many wallets as it
   holds here (BASELINE_WALLETS), the same 20 payments' measure.

    .venv/bin/python bench/xmr_scanner_bench.py [N [PARTS]]      (default 1000 wallets, parts 1234)
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.xmr_bench import total_rss  # RSS of the daemon and its wallet-rpc processes, measured one way
from daemons import xmr_scan_crypto as crypto
from daemons.xmr import XMRDaemon
from daemons.xmr_scan_crypto import Output, ParsedTx, scan_tx
from tests.monero_fixtures import Chain, Keys, funded_chain
from tests.support import DaemonClient, running_daemon

PAYMENTS = 20
BASELINE_WALLETS = 10  # one wallet-rpc each (~30 MiB, ~3 s of CPU to make): what this shared machine holds

# -- pure-Python ed25519 (RFC 8032 section 5.1 formulas, extended coordinates) ---------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def py_decode(data: bytes) -> tuple[int, int, int, int]:
    y = int.from_bytes(data, "little") & ((1 << 255) - 1)
    sign = data[31] >> 7
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        raise ValueError("not a point")
    if x & 1 != sign:
        x = P - x
    return x, y, 1, x * y % P


def py_encode(point: tuple[int, int, int, int]) -> bytes:
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def py_add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    cc, dd = t1 * 2 * D * t2 % P, z1 * 2 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


def py_mult(scalar: int, point: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = py_add(result, point)
        point = py_add(point, point)
        scalar >>= 1
    return result


G = py_decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def py_derivation(view_key: bytes, tx_key: bytes) -> bytes:
    return py_encode(py_mult(8 * int.from_bytes(view_key, "little"), py_decode(tx_key)))


def py_scan(tx: ParsedTx, view_key: bytes, spend_keys: dict[bytes, int]) -> int:
    derived = py_derivation(view_key, tx.public_keys[0])
    hits = 0
    for output in tx.outputs:
        if output.view_tag is not None and crypto.view_tag(derived, output.index) != output.view_tag:
            continue
        secret = int.from_bytes(crypto.output_secret(derived, output.index), "little")
        negated = py_mult(L - secret, G)
        hits += py_encode(py_add(py_decode(output.key), negated)) in spend_keys
    return hits


# -- synthetic transactions (the sender's side of the ECDH, as tests/test_xmr_scanner_units.py) -----------


def scalar() -> bytes:
    return crypto.hash_to_scalar(os.urandom(32))


def synthetic_tx(nacl: Any) -> ParsedTx:
    """A 2-output transaction to two strangers' primary addresses, with view tags and RingCT amounts."""
    r = scalar()
    outputs = []
    for index in range(2):
        view, spend = nacl.mult_base(scalar()), nacl.mult_base(scalar())
        eight = bytes(nacl.mult(bytes([8]) + bytes(31), nacl.mult(r, view)))
        secret = crypto.output_secret(eight, index)
        key = bytes(nacl.add(nacl.mult_base(secret), spend))
        outputs.append(Output(index, key, crypto.view_tag(eight, index), 0, bytes(8), bytes(32)))
    return ParsedTx(os.urandom(32).hex(), (bytes(nacl.mult_base(r)),), (), tuple(outputs), 0, False)


def watched(count: int) -> list[tuple[bytes, dict[bytes, int]]]:
    """``count`` wallets' view keys and a 201-entry spend-key table each, as the scanner holds them."""
    wallets = []
    for _ in range(count):
        view, spend = scalar(), bytes(crypto.lib().mult_base(scalar()))
        wallets.append((view, {crypto.subaddress_spend_key(view, spend, 0, m): m for m in range(201)}))
    return wallets


def arithmetic() -> None:
    nacl = crypto.load_crypto()
    print("1. curve arithmetic, per operation (median of runs)")
    view, tx = scalar(), synthetic_tx(nacl)
    (wallet,) = watched(1)
    assert crypto.derivation(view, tx.public_keys[0]) == py_derivation(view, tx.public_keys[0])
    key = tx.public_keys[0]
    rows = [
        ("derivation 8·a·R", lambda: crypto.derivation(view, key), lambda: py_derivation(view, key)),
        ("2-output tx, one wallet", lambda: scan_tx(tx, *wallet), lambda: py_scan(tx, *wallet)),
    ]
    print(f"{'operation':28} {'libsodium':>12} {'pure Python':>12} {'ratio':>8}")
    for name, native, pure in rows:
        fast, slow = timed(native, 400), timed(pure, 20)
        print(f"{name:28} {fast * 1e6:9.0f} us {slow * 1e6:9.0f} us {slow / fast:7.0f}x")


def timed(work: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def block_scans() -> None:
    nacl = crypto.load_crypto()
    print("\n3. scanning one block (CPU, no pool cache): seconds per block, T transactions x W wallets")
    sizes, counts = (1, 10, 50), (10, 100, 1000)
    txs = [synthetic_tx(nacl) for _ in range(max(sizes))]
    wallets = watched(max(counts))
    print(f"{'T / W':>8} " + " ".join(f"{w:>10}" for w in counts))
    for size in sizes:
        cells = []
        for count in counts:
            start = time.perf_counter()
            for tx in txs[:size]:
                for view, table in wallets[:count]:
                    scan_tx(tx, view, table)
            cells.append(time.perf_counter() - start)
        print(f"{size:>8} " + " ".join(f"{cell:9.3f}s" for cell in cells))


def env_for(chain: Chain, scanner: bool) -> dict[str, str]:
    return {
        "MONEROD_URL": chain.monerod.url,
        "NETWORK": "regtest",
        "CONFIRMATIONS": "1",
        "SCANNER": "true" if scanner else "false",
        "MAX_WALLET_RPC": str(BASELINE_WALLETS),
    }


async def load(d: DaemonClient, wallets: list[Keys], per_wallet: int = 1) -> list[dict[str, Any]]:
    """Each wallet's first request (which loads it), timed; then ``per_wallet - 1`` more each, untimed."""
    requests, times = [], []
    before = total_rss(d)
    for keys in wallets:
        start = time.perf_counter()
        requests.append(await d.call("add_request", "0.01", "bench", 3600, xpub=keys.view_only))
        times.append(time.perf_counter() - start)
    after = total_rss(d)
    print(
        f"{len(wallets)} wallets in {sum(times):.1f} s: median {statistics.median(times) * 1000:.0f} ms,"
        f" worst {max(times) * 1000:.0f} ms per wallet; RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB"
        f" (daemon and its wallet-rpc processes, {len(d.daemon.pool.processes())} of them)"
    )
    for _ in range(per_wallet - 1):
        more = [d.call("add_request", "0.01", "bench", 3600, xpub=keys.view_only) for keys in wallets]
        requests += await asyncio.gather(*more)
    return requests


async def latencies(d: DaemonClient, chain: Chain, requests: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    pool_times, block_times = [], []
    async with d.ws_connect() as ws:
        for request in random.sample(requests, PAYMENTS):
            await chain.pay_async(request["address"], "0.01")
            relayed = time.perf_counter()
            await wait_status(ws, request["address"], 7)
            pool_times.append(time.perf_counter() - relayed)
            await chain.mine_async(1)
            mined = time.perf_counter()
            await wait_status(ws, request["address"], 3)
            block_times.append(time.perf_counter() - mined)
    return pool_times, block_times


async def wait_status(ws: Any, address: str, wanted: int) -> None:
    async with asyncio.timeout(300):
        while True:
            message = await ws.receive_json()
            for event in message["updates"]:
                if event["event"] == "new_payment" and event["address"] == address and event["status"] == wanted:
                    return


def show(label: str, pool: list[float], block: list[float]) -> None:
    print(
        f"{label:40} pool: median {statistics.median(pool):.2f} s, worst {max(pool):.2f} s;"
        f" block: median {statistics.median(block):.2f} s, worst {max(block):.2f} s"
    )


async def daemons(chain: Chain, count: int, parts: str) -> None:
    if "2" in parts or "4" in parts:
        print(f"\n2. loading {count} watch-only wallets into one daemon with the scanner")
        async with running_daemon(XMRDaemon, env=env_for(chain, scanner=True)) as d:
            requests = await load(d, [Keys.random() for _ in range(count)])
            if "4" in parts:
                await asyncio.sleep(5)  # the new wallets' catch-up of the last blocks
                scanner_times = await latencies(d, chain, requests)
    if "4" not in parts:
        return
    print(f"\n   today's design, {BASELINE_WALLETS} wallets, one wallet-rpc each:")
    async with running_daemon(XMRDaemon, env=env_for(chain, scanner=False)) as d:
        requests = await load(d, [Keys.random() for _ in range(BASELINE_WALLETS)], -(-PAYMENTS // BASELINE_WALLETS))
        baseline_times = await latencies(d, chain, requests)
    print(f"\n4. detection latency, {PAYMENTS} payments: relayed -> 'unconfirmed', block -> 'paid'")
    show(f"scanner, {count} wallets", *scanner_times)
    show(f"wallet-rpc per wallet, {BASELINE_WALLETS} wallets", *baseline_times)
    ratio = statistics.median(scanner_times[0]) / statistics.median(baseline_times[0])
    ratio_block = statistics.median(scanner_times[1]) / statistics.median(baseline_times[1])
    print(f"ratio scanner / per-process (medians): pool {ratio:.2f}x, block {ratio_block:.2f}x")


async def main(count: int, parts: str) -> None:
    if "1" in parts:
        arithmetic()
    if "3" in parts:
        block_scans()
    if not ("2" in parts or "4" in parts):
        return
    with funded_chain("xmr-scan-bench-", payer_blocks=80) as chain:
        await daemons(chain, count, parts)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, sys.argv[2] if len(sys.argv) > 2 else "1234"))
