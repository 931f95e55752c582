"""Loop stall under hostile loads (issue 12, items 1-3): max ``/health`` latency next to an unloaded baseline.

Usage: ``.venv/bin/python bench/hostile_load.py [--duration 5] [--identity-length 900000]
[--slow-connections 1000] [--root DIR] [--only TEXT]``

A BTC daemon (Electrum, regtest, offline) runs as its own process, started as ``python -m daemons btc``
starts it, with its open-files limit set to 1,024 (soft and hard, so raising the soft limit gains
nothing). This process probes ``GET /health`` every 50 ms, each probe on a new connection (so it
also has to be accepted), and, phase after phase, runs one hostile load beside the probe:

- baseline: nothing else;
- long identity: 8 clients calling ``getbalance`` with an ``xpub`` of ``--identity-length`` characters;
- long key: 8 clients calling ``validatekey`` with such a key;
- websocket scope: 8 sockets sending ``{"xpub": <60,000 characters>}`` in a loop;
- huge batch: 4 clients posting a 0.99 MB batch of 21,000 ``help`` calls;
- allowed batches: 4 clients posting batches of MAX_BATCH_LENGTH (200) ``help`` calls;
- slow connections: ``--slow-connections`` connections that send a request head one byte per second.

Each load gets a fresh daemon (so none inherits work another one queued). Reported per load:
probes answered, failed (no answer within 30 s), median and max latency (the loop stall), the
daemon's RSS at the end, and how many lines it logged. ``--root`` runs the daemon from another checkout (for
example the code before the fix, made with ``git archive``); hostile requests there may stall the
daemon for minutes, so give it a shorter ``--identity-length`` (40,000 stalled it 1-2 s a call).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import free_port, rss_kib  # noqa: E402

LOGIN, PASSWORD = "electrum", "electrumz"
AUTH = "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
PROBE_EVERY = 0.05
PROBE_TIMEOUT = 30.0


def limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def rpc_body(method: str, params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


class Bench:
    def __init__(self, port: int, identity_length: int, slow_connections: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.identity_length = identity_length
        self.slow_connections = slow_connections
        self.stop = asyncio.Event()

    async def probe(self, latencies: list[float], failures: list[str]) -> None:
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while not self.stop.is_set():
                start = time.perf_counter()
                try:
                    async with session.get(self.url + "/health") as response:
                        await response.read()
                        latencies.append(time.perf_counter() - start)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failures.append(type(exc).__name__)
                await asyncio.sleep(PROBE_EVERY)

    async def post_loop(self, body: bytes) -> None:
        headers = {"Authorization": AUTH, "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.stop.is_set():
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(self.url + "/", data=body, headers=headers) as response:
                        await response.read()

    async def scope_loop(self, text: str) -> None:
        async with aiohttp.ClientSession() as session:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.ws_connect(self.url + "/ws", headers={"Authorization": AUTH}) as ws:
                    while not self.stop.is_set():
                        await ws.send_str(text)
                        await ws.receive(timeout=600)

    async def slow_connection(self) -> None:
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\nContent-Length: 10\r\n\r\n".encode()
        while not self.stop.is_set():  # a connection the daemon closes is opened again at once
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            try:
                for byte in head:
                    if self.stop.is_set():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1.0)
            except OSError:
                pass
            finally:
                writer.close()

    def loads(self) -> dict[str, Callable[[], list[Awaitable[None]]]]:
        key = "a" * self.identity_length
        compact = {"separators": (",", ":")}
        huge = json.dumps([{"jsonrpc": "2.0", "id": n, "method": "help"} for n in range(21_000)], **compact).encode()
        allowed = json.dumps([{"jsonrpc": "2.0", "id": n, "method": "help"} for n in range(200)]).encode()
        scope = json.dumps({"xpub": "a" * 60_000})
        return {
            "baseline (no load)": lambda: [],
            f"long identity ({self.identity_length:,} chars) x8": lambda: [
                self.post_loop(rpc_body("getbalance", {"xpub": key})) for _ in range(8)
            ],
            f"long validatekey key ({self.identity_length:,} chars) x8": lambda: [
                self.post_loop(rpc_body("validatekey", [key])) for _ in range(8)
            ],
            "websocket scope of 60,000 chars x8": lambda: [self.scope_loop(scope) for _ in range(8)],
            f"huge batch ({len(huge) / 1e6:.2f} MB, 21,000 calls) x4": lambda: [self.post_loop(huge) for _ in range(4)],
            "batches of 200 help calls x4": lambda: [self.post_loop(allowed) for _ in range(4)],
            f"{self.slow_connections} slow connections": lambda: [
                self.slow_connection() for _ in range(self.slow_connections)
            ],
        }

    async def phase(self, make: Callable[[], list[Awaitable[None]]], duration: float, pid: int) -> list[str]:
        """Run one load and probe beside it; the table cells of the result."""
        self.stop.clear()
        latencies: list[float] = []
        failures: list[str] = []
        attackers = [asyncio.ensure_future(load) for load in make()]
        await asyncio.sleep(min(2.0, duration / 2))  # the load builds up before the probe starts
        prober = asyncio.ensure_future(self.probe(latencies, failures))
        await asyncio.sleep(duration)
        self.stop.set()
        await prober
        rss = rss_kib(pid) / 1024
        for task in attackers:
            task.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)
        median = f"{statistics.median(latencies) * 1000:.1f} ms" if latencies else "none answered"
        worst = max(latencies, default=0.0) * 1000
        stall = f"{worst:.1f} ms" if not failures else f">= {PROBE_TIMEOUT:g} s (no answer)"
        return [str(len(latencies)), str(len(failures)), median, stall, f"{rss:.0f} MiB"]


async def wait_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError("the daemon exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/health") as response:
                    await response.read()
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError("the daemon did not start")


@contextlib.asynccontextmanager
async def fresh_daemon(root: Path, port: int) -> AsyncIterator[tuple[subprocess.Popen[bytes], Path]]:
    """A BTC daemon of its own for one phase, so that no phase inherits the work another one queued."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as data:
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "BTC_PORT": str(port),
            "BTC_HOST": "127.0.0.1",
            "BTC_DATA_PATH": str(Path(data) / "btc"),
            "BTC_NETWORK": "regtest",
            "BTC_OFFLINE": "true",
        }
        log_path = Path(data) / "daemon.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "daemons", "btc"],
                env=env,
                cwd=root,
                stdout=log,
                stderr=log,
                preexec_fn=limit_descriptors,
            )
        try:
            await wait_answering(f"http://127.0.0.1:{port}", process)
            yield process, log_path
        finally:
            process.kill()  # a daemon stalled by the old code would not stop in time
            process.wait(timeout=60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--identity-length", type=int, default=900_000)
    parser.add_argument("--slow-connections", type=int, default=1000)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--only", default="", help="run only the loads whose name contains this text")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1:] * 2)
    port = free_port()
    bench = Bench(port, args.identity_length, args.slow_connections)
    print(f"daemon from {args.root}, a fresh one per load, open-files limit 1024/1024, {args.duration:g} s probing")
    print(f"(a probe that got no answer within {PROBE_TIMEOUT:g} s counts as failed)\n")
    print("| load | probes answered | failed | median /health | max /health (loop stall) | daemon RSS | log lines |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, make in bench.loads().items():
        if args.only not in name and not name.startswith("baseline"):
            continue
        async with fresh_daemon(args.root, port) as (process, log_path):
            row = await bench.phase(make, args.duration, process.pid)
            lines = len(log_path.read_text(errors="replace").splitlines())
        print(f"| {name} | {' | '.join(row)} | {lines} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
