"""Core dispatch benchmark: a daemon's ``POST /`` against a bare aiohttp handler, plus websocket memory.

Usage: ``.venv/bin/python bench/dispatch.py [--duration 8] [--warmup 2] [--connections 64] [--rounds 2]
[--websockets 1000]``, or ``.venv/bin/python bench/dispatch.py --instructions [--requests 3000]
[--warmup-requests 1000] [--connections 16] [--floors]`` (needs valgrind: ``apt-get install -y valgrind``).
``--floors`` also counts the bare handler on aiohttp's low-level ``web.Server`` and a raw asyncio protocol
that does next to no HTTP: what aiohttp's own request handling costs.

Both servers run as separate processes on free loopback ports, exactly as ``python -m daemons``
would run them (``BaseDaemon.run``); the load comes from a third process, the same client for both:
a small asyncio HTTP/1.1 keep-alive client (cheaper per request than aiohttp's client, so that on a
2-core machine the servers, not the load generator, are what is measured). Each round loads the
daemon and the bare server for the same duration after the same warm-up, in alternating order.

The daemon's method is ``add(a: int, b: int)`` reached through the whole path: Basic auth, body
limit, JSON decoding, the extended JSON-RPC parsing, signature binding with type checks, and the
response. The bare handler decodes the same body, adds, and answers the same JSON.

``--instructions`` counts instead of timing, because this VM's speed drifts by ±20 % between runs:
each server runs under ``valgrind --tool=callgrind``; after a warm-up of a fixed number of requests
its counters are zeroed, then exactly ``--requests`` requests are sent and the counters dumped. The
user-space instructions per request (kernel work, such as the socket calls, is not counted) are the
same from run to run within 1 to 2 %.

Memory: VmRSS of an idle daemon right after start-up, then the growth of its VmRSS when another
process holds N authenticated websockets open on it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOGIN, PASSWORD = "electrum", "electrumz"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}'
EXPECTED = {"jsonrpc": "2.0", "id": 1, "result": 3}
CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()


# -- the two servers ---------------------------------------------------------------------------


def serve_daemon(port: int, data_path: str) -> None:
    from daemons.base import BaseDaemon, rpc

    class BenchDaemon(BaseDaemon):
        """A daemon with one trivial method: what remains is the core's own cost."""

        name = "BENCH"

        @rpc
        async def add(self, a: int, b: int) -> int:
            return a + b

    environ = {"BENCH_HOST": "127.0.0.1", "BENCH_PORT": str(port), "BENCH_DATA_PATH": data_path}
    BenchDaemon(environ=environ, env_file=Path("/nonexistent/.env")).run()


def serve_bare(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        answer = {"jsonrpc": "2.0", "id": call["id"], "result": call["params"][0] + call["params"][1]}
        return web.Response(text=json.dumps(answer, separators=(",", ":")), content_type="application/json")

    app = web.Application()
    app.router.add_post("/", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def bare_answer(body: bytes) -> bytes:
    call = json.loads(body)
    answer = {"jsonrpc": "2.0", "id": call["id"], "result": call["params"][0] + call["params"][1]}
    return json.dumps(answer, separators=(",", ":")).encode()


def serve_bare_lowlevel(port: int) -> None:
    """The bare handler on aiohttp's low-level ``web.Server`` (no Application, no router): aiohttp's floor."""
    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.Response:
        return web.Response(body=bare_answer(await request.read()), content_type="application/json")

    async def serve() -> None:
        await asyncio.get_running_loop().create_server(web.Server(handle), "127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(serve())


def next_message(buffer: bytes) -> tuple[int, int] | None:
    """(where the head ends, where the message ends) of the first whole HTTP message in ``buffer``, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    match = CONTENT_LENGTH.search(buffer, 0, end)
    total = end + 4 + (int(match.group(1)) if match else 0)
    return (end, total) if len(buffer) >= total else None


class RawHTTP(asyncio.Protocol):
    """Not a server to use: the least an asyncio program can do to answer this bench's requests (the head
    found by its blank line, the body by Content-Length, nothing checked), to show what aiohttp's own
    request handling costs."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (found := next_message(self.buffer)) is not None:
            end, total = found
            body, self.buffer = self.buffer[end + 4 : total], self.buffer[total:]
            answer = bare_answer(body)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n\r\n"
            self.transport.write(head % len(answer) + answer)


def serve_raw_protocol(port: int) -> None:
    async def serve() -> None:
        await asyncio.get_running_loop().create_server(RawHTTP, "127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- the load generator ------------------------------------------------------------------------


class KeepAlive(asyncio.Protocol):
    """One connection sending the same request again as soon as the previous answer is complete."""

    def __init__(self, request: bytes, stats: dict[str, Any]) -> None:
        self.request = request
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (found := next_message(self.buffer)) is not None:
            end, total = found
            status, body = self.buffer[9:12], self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            self.answered(status, body)

    def answered(self, status: bytes, body: bytes) -> None:
        if status != b"200" or (self.stats["checked"] < 1 and json.loads(body) != EXPECTED):
            self.stats["errors"] += 1
        self.stats["checked"] += 1
        self.stats["done"] += 1
        if not self.stats["stop"] and self.transport is not None:
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class Counted(KeepAlive):
    """A keep-alive connection that stops sending once the shared budget of requests is spent."""

    def answered(self, status: bytes, body: bytes) -> None:
        stats = self.stats
        if status != b"200" or (stats["checked"] < 1 and json.loads(body) != EXPECTED):
            stats["errors"] += 1
        stats["checked"] += 1
        stats["done"] += 1
        if stats["done"] == stats["target"]:
            stats["finished"].set_result(None)
        self.send()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self) -> None:
        if self.stats["sent"] < self.stats["target"] and self.transport is not None:
            self.stats["sent"] += 1
            self.transport.write(self.request)


async def load_counted(port: int, connections: int, warmup: int, requests: int) -> dict[str, Any]:
    """Send ``warmup`` requests, say "warm", wait for a line on stdin, then send exactly ``requests``."""
    request = http_request(port)
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {"done": 0, "errors": 0, "checked": 0, "sent": 0, "target": 0}
    pairs = [
        await loop.create_connection(lambda: Counted(request, stats), "127.0.0.1", port) for _ in range(connections)
    ]
    for target in (warmup, warmup + requests):
        stats["target"], stats["finished"] = target, loop.create_future()
        for _, protocol in pairs:
            protocol.send()
        await stats["finished"]
        if target == warmup:
            print("warm", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
    for transport, _ in pairs:
        transport.close()
    return {"requests": requests, "errors": stats["errors"]}


def http_request(port: int) -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {basic_auth()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, pid: int, connections: int, warmup: float, duration: float) -> dict[str, Any]:
    request = http_request(port)
    stats: dict[str, Any] = {"done": 0, "errors": 0, "checked": 0, "stop": False}
    loop = asyncio.get_running_loop()
    pairs = [
        await loop.create_connection(lambda: KeepAlive(request, stats), "127.0.0.1", port) for _ in range(connections)
    ]
    await asyncio.sleep(warmup)
    start_count, start, start_cpu = stats["done"], time.perf_counter(), cpu_seconds(pid)
    await asyncio.sleep(duration)
    count, elapsed = stats["done"] - start_count, time.perf_counter() - start
    cpu = cpu_seconds(pid) - start_cpu
    stats["stop"] = True
    for transport, _ in pairs:
        transport.close()
    return {"rps": count / elapsed, "cpu_us": cpu * 1e6 / count, "requests": count, "errors": stats["errors"]}


# -- websockets --------------------------------------------------------------------------------


async def hold_websockets(port: int, count: int) -> None:
    """Open ``count`` authenticated websockets, say so, and hold them until stdin closes."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        headers = {"Authorization": basic_auth()}
        sockets = []
        for _ in range(count):
            sockets.append(await session.ws_connect(f"http://127.0.0.1:{port}/ws", headers=headers))
        await sockets[-1].send_str("sync")  # answered once the server has fully set up the last socket
        await sockets[-1].receive(timeout=30)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for ws in sockets:
            await ws.close()


# -- orchestration -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int | str = "self") -> int:
    """Resident memory of a process (this one by default) in KiB; 0 once it has exited (a zombie has no
    VmRSS line): the benches that sum a pool's processes meet ones that stopped while they were listed."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def spawn(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, **kwargs)


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_load(port: int, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    command = ["load", str(port), str(pid), str(args.connections), str(args.warmup), str(args.duration)]
    output = subprocess.run([sys.executable, __file__, *command], cwd=ROOT, capture_output=True, check=True)
    return json.loads(output.stdout)


def measure_websockets(port: int, pid: int, count: int) -> tuple[int, int]:
    idle = rss_kib(pid)
    holder = spawn("websockets", str(port), str(count), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    if holder.stdout.readline().strip() != b"ready":
        raise RuntimeError("the websocket holder failed")
    time.sleep(1.0)  # let the server settle (heartbeat timers, buffers)
    held = rss_kib(pid)
    holder.stdin.close()
    holder.wait(timeout=60)
    return idle, held


def callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def count_instructions(role: str, args: argparse.Namespace, data_path: str) -> float:
    """User-space instructions per request of one server under callgrind, counted over ``--requests``."""
    port = free_port()
    out = Path(data_path) / f"callgrind.{role}.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
    extra = [data_path] if role == "serve-daemon" else []
    server = subprocess.Popen([*command, role, str(port), *extra], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server, timeout=600)
        counted = [str(port), str(args.connections), str(args.warmup_requests), str(args.requests)]
        client = spawn("load-counted", *counted, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert client.stdin is not None and client.stdout is not None
        if client.stdout.readline().strip() != b"warm":
            raise RuntimeError("the load client failed during warm-up")
        callgrind_control("--zero", server.pid)
        client.stdin.write(b"go\n")
        client.stdin.close()
        outcome = json.loads(client.stdout.read())
        client.wait(timeout=60)
        callgrind_control("--dump", server.pid)
        if outcome["errors"]:
            raise RuntimeError(f"{role}: {outcome['errors']} bad answers")
        dumps = sorted(Path(data_path).glob(f"{out.name}.*"), key=lambda path: path.stat().st_mtime)
        summary = re.search(r"^summary: (\d+)", dumps[-1].read_text(), re.MULTILINE)
        assert summary is not None, "callgrind wrote no summary"
        return int(summary.group(1)) / args.requests
    finally:
        stop(server)


def main_instructions(args: argparse.Namespace) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as data_path:
        daemon = count_instructions("serve-daemon", args, data_path)
        bare = count_instructions("serve-bare", args, data_path)
    print(f"{args.connections} connections, {args.requests} requests counted after {args.warmup_requests} of warm-up")
    print(f"daemon (POST / add):  {daemon:9.0f} instructions/request")
    print(f"bare aiohttp handler: {bare:9.0f} instructions/request")
    print(f"ratio daemon / bare, by instructions per request: {bare / daemon:.2f} (target >= 0.90, issue 18)")
    if args.floors:
        with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as data_path:
            lowlevel = count_instructions("serve-bare-lowlevel", args, data_path)
            raw = count_instructions("serve-raw-protocol", args, data_path)
        print(f"bare handler on aiohttp's low-level web.Server: {lowlevel:9.0f} instructions/request")
        print(f"raw asyncio protocol (no HTTP parsing to speak of): {raw:9.0f} instructions/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=None, help="default: 64, or 16 with --instructions")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--websockets", type=int, default=1000)
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind instead")
    parser.add_argument("--requests", type=int, default=3000, help="requests counted with --instructions")
    parser.add_argument(
        "--floors", action="store_true", help="with --instructions: also aiohttp's low-level server and a raw protocol"
    )
    parser.add_argument("--warmup-requests", type=int, default=1000, help="warm-up requests with --instructions")
    args = parser.parse_args()
    if args.instructions:
        args.connections = args.connections or 16
        main_instructions(args)
        return
    args.connections = args.connections or 64

    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as data_path:
        daemon_port, bare_port = free_port(), free_port()
        daemon = spawn("serve-daemon", str(daemon_port), data_path, stderr=subprocess.DEVNULL)
        bare = spawn("serve-bare", str(bare_port), stderr=subprocess.DEVNULL)
        try:
            wait_listening(daemon_port, daemon)
            wait_listening(bare_port, bare)
            time.sleep(0.5)
            idle, held = measure_websockets(daemon_port, daemon.pid, args.websockets)
            rps: dict[str, list[float]] = {"daemon": [], "bare": []}
            cpu: dict[str, list[float]] = {"daemon": [], "bare": []}
            for round_number in range(args.rounds):
                order = [("daemon", daemon_port, daemon.pid), ("bare", bare_port, bare.pid)]
                for name, port, pid in order if round_number % 2 == 0 else reversed(order):
                    outcome = run_load(port, pid, args)
                    if outcome["errors"]:
                        raise RuntimeError(f"{name}: {outcome['errors']} bad answers")
                    rps[name].append(outcome["rps"])
                    cpu[name].append(outcome["cpu_us"])
                    print(
                        f"round {round_number + 1} {name:6}: {outcome['rps']:8.0f} requests/s, "
                        f"{outcome['cpu_us']:6.1f} us of server CPU per request",
                        flush=True,
                    )
        finally:
            stop(daemon)
            stop(bare)

    daemon_rps, bare_rps = max(rps["daemon"]), max(rps["bare"])
    daemon_cpu, bare_cpu = min(cpu["daemon"]), min(cpu["bare"])
    print(f"\n{args.connections} connections, {args.duration:g} s per run after {args.warmup:g} s warm-up")
    best = f"(best of {args.rounds})"
    print(f"daemon (POST / add):  {daemon_rps:8.0f} requests/s, {daemon_cpu:6.1f} us CPU/request {best}")
    print(f"bare aiohttp handler: {bare_rps:8.0f} requests/s, {bare_cpu:6.1f} us CPU/request {best}")
    print(f"ratio daemon / bare, throughput: {daemon_rps / bare_rps:.2f} (target >= 0.90, issue 18)")
    print(f"ratio daemon / bare, by server CPU per request: {bare_cpu / daemon_cpu:.2f}")
    print(f"idle daemon RSS: {idle / 1024:.1f} MiB")
    per_thousand = (held - idle) * 1000 / args.websockets
    print(f"RSS per 1,000 open websockets: {per_thousand / 1024:.1f} MiB ({args.websockets} held)")


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    raise_fd_limit()
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "serve-daemon":
        serve_daemon(int(sys.argv[2]), sys.argv[3])
    elif role == "serve-bare":
        serve_bare(int(sys.argv[2]))
    elif role == "serve-bare-lowlevel":
        serve_bare_lowlevel(int(sys.argv[2]))
    elif role == "serve-raw-protocol":
        serve_raw_protocol(int(sys.argv[2]))
    elif role == "load":
        port, pid, connections = map(int, sys.argv[2:5])
        warmup, duration = map(float, sys.argv[5:7])
        print(json.dumps(asyncio.run(load(port, pid, connections, warmup, duration))))
    elif role == "load-counted":
        port, connections, warmup_requests, requests = map(int, sys.argv[2:6])
        print(json.dumps(asyncio.run(load_counted(port, connections, warmup_requests, requests))))
    elif role == "websockets":
        asyncio.run(hold_websockets(int(sys.argv[2]), int(sys.argv[3])))
    else:
        os.environ.setdefault("PYTHONHASHSEED", "0")
        main()
