"""Websocket fan-out: events per second delivered to N sockets, a daemon's hub against a bare aiohttp broadcast loop.

Usage: ``.venv/bin/python bench/ws_fanout.py [--sockets 1000] [--scoped-events 5000] [--unscoped-events 20]
[--rounds 2]``

Two server processes, started as ``python -m daemons`` starts a daemon (``BaseDaemon.run``): a daemon whose
method ``emit(count, scoped)`` stores and publishes ``count`` events through ``BaseDaemon.notify`` (the path every
coin's events take: durable append to the event log, then the hub), and a bare aiohttp server whose ``POST /emit``
encodes each event once and sends it, in a loop over its sockets, to those whose scope it concerns (the usual
broadcast loop). A third process holds ``--sockets`` websockets on each and counts the events they receive.

Two shapes: every socket scoped to a different wallet and each event for one wallet, round robin (each event
reaches one socket); and no socket scoped with events for no wallet (each event reaches every socket). Reported:
events delivered per second (first emit to last event received) and the server's CPU time per delivered event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import basic_auth, cpu_seconds, free_port, stop, wait_listening  # noqa: E402


def serve_daemon(port: int, data_path: str) -> None:
    from daemons.base import BaseDaemon, rpc

    class FanoutDaemon(BaseDaemon):
        """Events on demand: what remains is the cost of storing and delivering them."""

        name = "FANOUT"

        @rpc
        async def emit(self, count: int, scoped: bool, sockets: int) -> int:
            for number in range(count):
                await self.notify("new_block", {"height": number}, wallet=f"w{number % sockets}" if scoped else None)
            return count

    environ = {
        "FANOUT_HOST": "127.0.0.1",
        "FANOUT_PORT": str(port),
        "FANOUT_DATA_PATH": data_path,
        "FANOUT_MAX_CONNECTIONS": "5000",
    }
    FanoutDaemon(environ=environ, env_file=Path("/nonexistent/.env")).run()


def serve_bare(port: int) -> None:
    from aiohttp import WSMsgType, web

    sockets: dict[web.WebSocketResponse, str | None] = {}

    async def handle_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets[ws] = None
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    sockets[ws] = json.loads(message.data).get("xpub")
        finally:
            sockets.pop(ws, None)
        return ws

    async def handle_emit(request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        count, scoped, total = call["params"]
        for number in range(count):
            wallet = f"w{number % total}" if scoped else None
            text = json.dumps({"updates": [{"event": "new_block", "height": number}], "wallet": wallet})
            for ws, scope in list(sockets.items()):
                if scope is None or scope == wallet:
                    await ws.send_str(text)
        return web.json_response({"jsonrpc": "2.0", "id": call["id"], "result": count})

    app = web.Application()
    app.router.add_get("/ws", handle_ws)
    app.router.add_post("/", handle_emit)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the listeners -----------------------------------------------------------------------------


async def open_sockets(session: Any, port: int, count: int, scoped: bool) -> list[Any]:
    headers = {"Authorization": basic_auth()}
    sockets = []
    for number in range(count):
        ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws", headers=headers, heartbeat=None)
        if scoped:
            await ws.send_str(json.dumps({"xpub": f"w{number}"}))
        sockets.append(ws)
    await asyncio.sleep(1.0)  # scopes applied (the daemon loads each scoped wallet)
    return sockets


async def count_events(ws: Any, counter: dict[str, Any]) -> None:
    async for message in ws:
        counter["events"] += message.data.count('"event"')
        if counter["events"] >= counter["expected"] and not counter["done"].done():
            counter["done"].set_result(time.perf_counter())


async def fan_out(session: Any, port: int, pid: int, sockets: list[Any], count: int, scoped: bool) -> dict[str, float]:
    """Emit ``count`` events and wait until every socket it concerns has them; events/s and CPU µs per event."""
    expected = count if scoped else count * len(sockets)
    counter: dict[str, Any] = {"events": 0, "expected": expected, "done": asyncio.get_running_loop().create_future()}
    readers = [asyncio.create_task(count_events(ws, counter)) for ws in sockets]
    body = {"jsonrpc": "2.0", "id": 1, "method": "emit", "params": [count, scoped, len(sockets)]}
    cpu_before, start = cpu_seconds(pid), time.perf_counter()
    async with session.post(f"http://127.0.0.1:{port}/", json=body, headers={"Authorization": basic_auth()}) as r:
        await r.read()
    finished = await asyncio.wait_for(counter["done"], 300)
    cpu = cpu_seconds(pid) - cpu_before
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {"rate": expected / (finished - start), "cpu_us": cpu * 1e6 / expected}


async def measure(servers: dict[str, tuple[int, int]], args: argparse.Namespace) -> dict[tuple[str, bool], dict]:
    import aiohttp

    best: dict[tuple[str, bool], dict[str, float]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for scoped in (True, False):
            count = args.scoped_events if scoped else args.unscoped_events
            held = {}
            for name, (port, _) in servers.items():
                held[name] = await open_sockets(session, port, args.sockets, scoped)
            for _ in range(args.rounds):
                for name, (port, pid) in servers.items():
                    result = await fan_out(session, port, pid, held[name], count, scoped)
                    previous = best.get((name, scoped))
                    if previous is None or result["rate"] > previous["rate"]:
                        best[(name, scoped)] = result
            for sockets in held.values():
                await asyncio.gather(*(ws.close() for ws in sockets))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--scoped-events", type=int, default=5000)
    parser.add_argument("--unscoped-events", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", nargs="+")
    args = parser.parse_args()
    if args.serve:
        serve_daemon(int(args.serve[1]), args.serve[2]) if args.serve[0] == "daemon" else serve_bare(int(args.serve[1]))
        return
    from bench.dispatch import raise_fd_limit

    raise_fd_limit()
    with tempfile.TemporaryDirectory() as data_path:
        processes = {}
        try:
            for role in ("daemon", "bare"):
                port = free_port()
                command = [sys.executable, __file__, "--serve", role, str(port), data_path]
                processes[role] = (port, subprocess.Popen(command, cwd=ROOT))
                wait_listening(port, processes[role][1])
            best = asyncio.run(measure({name: (port, p.pid) for name, (port, p) in processes.items()}, args))
        finally:
            for _, process in processes.values():
                stop(process)
    print(f"websocket fan-out, {args.sockets} sockets, best of {args.rounds} rounds")
    print("| sockets | daemon events/s | bare events/s | ratio | daemon CPU/event | bare CPU/event |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scoped in (True, False):
        ours, bare = best[("daemon", scoped)], best[("bare", scoped)]
        shape = "each scoped to its own wallet" if scoped else "all unscoped"
        print(
            f"| {shape} | {ours['rate']:,.0f} | {bare['rate']:,.0f} | {ours['rate'] / bare['rate']:.2f} "
            f"| {ours['cpu_us']:.1f} µs | {bare['cpu_us']:.1f} µs |"
        )


if __name__ == "__main__":
    main()
