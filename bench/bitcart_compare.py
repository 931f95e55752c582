"""BTC daemon against bitcart's own BTC daemon: server CPU time per request on the SDK's most frequent calls.

Usage: ``.venv/bin/python bench/bitcart_compare.py [--bitcart /tmp/bitcart] [--bitcart-python /tmp/bcvenv/bin/python]
[--requests 2000] [--rounds 3] [--connections 32] [--wallets 200] [--calls getbalance,validateaddress]``

Both daemons run as their own processes on the same regtest stack (regtest node + ElectrumX on loopback, from
``regtest/stack.py``) with the same Electrum library (Debian's 4.3.4), beside a bare aiohttp handler that decodes
the same request and answers the same JSON. ``--bitcart`` is a checkout of ``bitcart/bitcart`` at commit cb1e6369
(only its ``daemons/`` folder is used; nothing of it belongs to this project), run as ``python daemons/btc.py`` by
``--bitcart-python``, a Python that has Electrum plus ``python-decouple``, ``universalasync`` and aiohttp (a venv
made with ``--system-site-packages``). Without a checkout the bench says so and compares this daemon with the bare
handler only.

For each call, after a warm-up, one load process (this one) sends exactly ``--requests`` requests over
``--connections`` keep-alive connections to each server in turn (interleaved, ``--rounds`` rounds) and reads the
server process's CPU time (user + system, ``/proc/<pid>/stat``) before and after; the best round per server is
reported. CPU time per request is what other processes on the machine disturb least. Then each daemon loads
``--wallets`` fresh watch-only vpubs by their first ``getbalance`` (one after the other): time per load and VmRSS
growth per wallet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import KeepAlive, basic_auth, cpu_seconds, free_port, rss_kib, stop, wait_listening  # noqa: E402

WALLET_SEED = 900  # tests.btc_support.key_pair: the merchant wallet every call uses
CALLS = (
    "getbalance",
    "add_request",
    "get_request",
    "getaddresshistory",
    "onchain_history",
    "validateaddress",
    "validatekey",
    "get_tx_status",
    "get_transaction",
    "get_updates",
)
# add_request adds an address to the wallet and writes it to disk each time: fewer calls, so that the wallet
# each daemon ends with stays comparable to the one it started with.
REQUESTS_SHARE = {"add_request": 0.1}


@dataclass
class Server:
    """One server process under test and what it answered."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    answers: dict[str, Any] = field(default_factory=dict)
    cpu_us: dict[str, float] = field(default_factory=dict)


# -- the bare handler --------------------------------------------------------------------------


def serve_bare(port: int, answers_file: str) -> None:
    """Decode the request, answer the result this daemon gave to the same method (so: the same JSON)."""
    from aiohttp import web

    results = json.loads(Path(answers_file).read_text())

    async def handle(request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        answer = {"jsonrpc": "2.0", "id": call["id"], "result": results.get(call["method"])}
        return web.Response(text=json.dumps(answer), content_type="application/json")

    app = web.Application()
    app.router.add_post("/", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- load --------------------------------------------------------------------------------------


class Connection(KeepAlive):
    """A keep-alive connection (dispatch's parser) sending one request again after each answer, within a budget."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def answered(self, status: bytes, body: bytes) -> None:
        stats = self.stats
        if status != b"200" or b'"error"' in body:
            stats["errors"] += 1
            stats["last_error"] = body[:300]
        stats["done"] += 1
        if stats["done"] == stats["target"]:
            stats["finished"].set_result(None)
        self.send()

    def send(self) -> None:
        if self.stats["sent"] < self.stats["target"] and self.transport is not None:
            self.stats["sent"] += 1
            self.transport.write(self.request)


def http_request(port: int, body: bytes) -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {basic_auth()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def load(server: Server, body: bytes, connections: int, requests: int) -> tuple[float, int, bytes]:
    """Send exactly ``requests`` requests; the server's CPU µs per request, the error count, an error."""
    loop = asyncio.get_running_loop()
    request = http_request(server.port, body)
    stats: dict[str, Any] = {"done": 0, "errors": 0, "sent": 0, "target": requests, "last_error": b""}
    stats["finished"] = loop.create_future()
    pairs = [
        await loop.create_connection(lambda: Connection(request, stats), "127.0.0.1", server.port)
        for _ in range(connections)
    ]
    before = cpu_seconds(server.process.pid)
    for _, protocol in pairs:
        protocol.send()
    await stats["finished"]
    cpu = cpu_seconds(server.process.pid) - before
    for transport, _ in pairs:
        transport.close()
    return cpu * 1e6 / requests, stats["errors"], stats["last_error"]


async def call(port: int, method: str, *params: Any, **named: Any) -> Any:
    """One JSON-RPC call (aiohttp client); the whole answer object."""
    import aiohttp

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": [*params, named] if named else list(params)}
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": basic_auth()}
        async with session.post(f"http://127.0.0.1:{port}/", json=body, headers=headers, timeout=120) as response:
            return json.loads(await response.read())


# -- the servers -------------------------------------------------------------------------------


def start_ours(server: str, data_path: str, profile: str = "") -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BTC_PORT": str(port),
        "BTC_DATA_PATH": data_path,
        "BTC_NETWORK": "regtest",
        "BTC_SERVER": server,
        "BTC_ONESERVER": "true",
    }
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    process = subprocess.Popen([sys.executable, *profiler, "-m", "daemons", "btc"], cwd=ROOT, env=env)
    wait_listening(port, process, timeout=60)
    return Server("this daemon", port, process)


def start_bitcart(checkout: Path, python: str, server: str, data_path: str) -> Server:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "BTC_PORT": str(port),
        "BTC_DATA_PATH": data_path,
        "BTC_NETWORK": "regtest",
        "BTC_SERVER": server,
        "BTC_ONESERVER": "true",
    }
    log = open(Path(data_path).parent / "bitcart.log", "wb")  # noqa: SIM115 (Electrum's INFO lines; closed with the run)
    process = subprocess.Popen([python, "daemons/btc.py"], cwd=checkout, env=env, stdout=log, stderr=log)
    wait_listening(port, process, timeout=60)
    return Server("bitcart", port, process)


def start_bare(answers: dict[str, Any], scratch: str) -> Server:
    port = free_port()
    answers_file = Path(scratch) / "answers.json"
    answers_file.write_text(json.dumps(answers))
    process = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port), str(answers_file)], cwd=ROOT)
    wait_listening(port, process)
    return Server("bare aiohttp", port, process)


# -- the calls ---------------------------------------------------------------------------------


@dataclass
class Fixture:
    """The merchant wallet's identity and what the calls are asked about."""

    xpub: str
    address: str
    txid: str
    request_ids: dict[int, str] = field(default_factory=dict)  # by server port: each daemon made its own


def call_body(method: str, fixture: Fixture, port: int) -> bytes:
    """The request the bitcart SDK sends for ``method`` (positional arguments, the wallet as named ``xpub``)."""
    wallet = {"xpub": fixture.xpub}
    params: list[Any] = {
        "getbalance": [wallet],
        "add_request": ["0.001", "bench", 3600, True, wallet],
        "get_request": [fixture.request_ids.get(port, ""), wallet],
        "getaddresshistory": [fixture.address],
        "onchain_history": [wallet],
        "validateaddress": [fixture.address],
        "validatekey": [fixture.xpub],
        "get_tx_status": [fixture.txid, wallet],
        "get_transaction": [fixture.txid],
        "get_updates": [wallet],
    }[method]
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


async def prepare_wallet(servers: list[Server], fixture: Fixture) -> None:
    """Load the merchant wallet in each daemon (first call waits for its sync) and make one request."""
    for server in servers:
        answer = await call(server.port, "getbalance", xpub=fixture.xpub)
        if "error" in answer:
            raise RuntimeError(f"{server.name}: getbalance failed: {answer}")
        created = await call(server.port, "add_request", "0.001", "bench", 3600, True, xpub=fixture.xpub)
        if "error" in created:
            raise RuntimeError(f"{server.name}: add_request failed: {created}")
        fixture.request_ids[server.port] = created["result"]["request_id"]


async def measure(servers: list[Server], fixture: Fixture, args: argparse.Namespace) -> None:
    for method in args.calls:
        bodies = {server.port: call_body(method, fixture, server.port) for server in servers}
        requests = max(100, int(args.requests * REQUESTS_SHARE.get(method, 1.0)))
        for server in servers:
            server.answers[method] = await call_raw(server.port, bodies[server.port])
            await load(server, bodies[server.port], args.connections, max(50, requests // 5))  # warm-up
        for _ in range(args.rounds):
            for server in servers:
                cpu_us, errors, error = await load(server, bodies[server.port], args.connections, requests)
                if errors:
                    print(f"  {server.name} {method}: {errors} errors, e.g. {error!r}", file=sys.stderr)
                server.cpu_us[method] = min(server.cpu_us.get(method, float("inf")), cpu_us)
        print(f"  measured {method}", file=sys.stderr, flush=True)


async def call_raw(port: int, body: bytes) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": basic_auth(), "Content-Type": "application/json"}
        async with session.post(f"http://127.0.0.1:{port}/", data=body, headers=headers, timeout=120) as response:
            return json.loads(await response.read())


async def wallet_loads(server: Server, count: int) -> tuple[float, float]:
    """Milliseconds per wallet load (first getbalance of a fresh vpub) and KiB of VmRSS per loaded wallet."""
    from electrum import bip32

    keys = [bip32.BIP32Node.from_rootseed(os.urandom(32), xtype="p2wpkh").to_xpub() for _ in range(count)]
    rss_before = rss_kib(server.process.pid)
    start = time.perf_counter()
    for key in keys:
        answer = await call(server.port, "getbalance", xpub=key)
        if "error" in answer:
            raise RuntimeError(f"{server.name}: loading a wallet failed: {answer}")
    elapsed = time.perf_counter() - start
    return elapsed * 1000 / count, (rss_kib(server.process.pid) - rss_before) / count


# -- report ------------------------------------------------------------------------------------


def report(ours: Server, bitcart: Server | None, bare: Server, calls: list[str]) -> None:
    print("\nserver CPU time per request (best of the rounds), µs")
    print("| call | this daemon | bitcart's | ratio bitcart/ours | bare aiohttp | ours/bare |")
    print("| --- | --- | --- | --- | --- | --- |")
    for method in calls:
        mine, base = ours.cpu_us[method], bare.cpu_us[method]
        theirs = bitcart.cpu_us.get(method) if bitcart else None
        their_text = f"{theirs:.0f}" if theirs else "n/a"
        ratio = f"{theirs / mine:.2f}x" if theirs and mine else "n/a"
        # A call sent only a few times (add_request gets a tenth) can read 0 at /proc's 10 ms clock tick.
        over_bare = f"{mine / base:.2f}x" if base else "n/a"
        print(f"| `{method}` | {mine:.0f} | {their_text} | {ratio} | {base:.0f} | {over_bare} |")


def compare_answers(ours: Server, bitcart: Server, calls: list[str]) -> None:
    for method in calls:
        a, b = ours.answers.get(method), bitcart.answers.get(method)
        same = a.get("result") == b.get("result") if a and b else False
        if not same:
            print(f"  answers differ for {method}: ours {str(a)[:200]} / bitcart {str(b)[:200]}", file=sys.stderr)


# -- orchestration -----------------------------------------------------------------------------


def mine_history(stack: Any) -> Fixture:
    """Mine 3 blocks paying the merchant wallet's first address (its history), then 101 to another key's."""
    import electrum.constants

    from tests.btc_support import key_pair

    electrum.constants.set_regtest()
    keys = key_pair(WALLET_SEED, "p2wpkh")
    address = keys.first_address()
    hashes = stack.mine(3, address)
    block = stack.rpc("getblock", hashes[0])
    stack.mine(101, key_pair(WALLET_SEED + 1, "p2wpkh").first_address())
    return Fixture(xpub=keys.xpub, address=address, txid=block["tx"][0])


async def run(args: argparse.Namespace, stack: Any, scratch: str) -> None:
    fixture = mine_history(stack)
    ours = start_ours(stack.electrum_server, str(Path(scratch) / "ours"), args.profile)
    servers = [ours]
    bitcart = None
    try:
        if args.bitcart:
            bitcart = start_bitcart(
                Path(args.bitcart), args.bitcart_python, stack.electrum_server, str(Path(scratch) / "bitcart")
            )
            servers.append(bitcart)
        await prepare_wallet(servers, fixture)
        answers = {}
        for method in args.calls:
            answers[method] = (await call_raw(ours.port, call_body(method, fixture, ours.port))).get("result")
        bare = start_bare(answers, scratch)
        servers.append(bare)
        try:
            await measure(servers, fixture, args)
        finally:
            stop(bare.process)
        report(ours, bitcart, bare, args.calls)
        if bitcart:
            compare_answers(ours, bitcart, args.calls)
        if args.wallets:
            print(f"\nwallet loads: {args.wallets} fresh vpubs, first getbalance each, one after the other")
            print("| daemon | time per load | RSS per loaded wallet |")
            print("| --- | --- | --- |")
            for server in servers[:-1]:
                ms, kib = await wallet_loads(server, args.wallets)
                print(f"| {server.name} | {ms:.1f} ms | {kib:.0f} KiB |", flush=True)
    finally:
        for server in servers:
            stop(server.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bitcart", default="", help="a bitcart/bitcart checkout (commit cb1e6369)")
    parser.add_argument("--bitcart-python", default="/tmp/bcvenv/bin/python")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wallets", type=int, default=200)
    parser.add_argument("--calls", default=",".join(CALLS))
    parser.add_argument("--profile", default="", help="run this daemon under cProfile, writing this file")
    parser.add_argument("--serve-bare", nargs=2, metavar=("PORT", "ANSWERS"))
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return
    args.calls = [name for name in args.calls.split(",") if name]
    if not args.bitcart or not (Path(args.bitcart) / "daemons" / "btc.py").exists():
        print("no bitcart checkout given (--bitcart): measuring this daemon against the bare handler only")
        args.bitcart = ""
    from regtest.stack import RegtestStack

    with tempfile.TemporaryDirectory() as scratch, RegtestStack() as stack:
        asyncio.run(run(args, stack, scratch))


if __name__ == "__main__":
    main()
