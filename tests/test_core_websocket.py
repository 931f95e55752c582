"""Websocket events of the core against the real application: scoping, replay, restarts, slow clients.

Every test serves the real SampleDaemon on a loopback port and listens with real websocket
clients. The server's answer to a malformed command (an error object) is used as a barrier: the
commands of one socket are applied in order, so once the error for ``"sync"`` arrives, every
command sent before it is in force. Waits are bounded only to turn a hang into a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemons.events import PRUNE_EVERY
from daemons.jsonrpc import RPCError
from daemons.websocket import CLOSE_TOO_SLOW
from tests.sample_daemon import SampleDaemon
from tests.support import ROOT, DaemonClient, free_port, prefixed, running_daemon, wait_until_answering

WAIT = 20.0  # seconds: a guard against hangs, never a performance assertion
MESSAGE_KEYS = {"updates", "wallet", "currency"}


class Listener:
    """A websocket client that checks the shape of every message and keeps the events in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[tuple[str | None, dict[str, Any]]] = []  # (message's wallet, event)
        self.errors: list[dict[str, Any]] = []

    @property
    def ids(self) -> list[int]:
        return [event["id"] for _, event in self.received]

    async def read_one(self, timeout: float = WAIT) -> None:
        message = await self.ws.receive(timeout=timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket ended: {message.type.name}, close code {self.ws.close_code}")
        body = json.loads(message.data)
        if "error" in body:
            assert isinstance(body["error"]["code"], int) and isinstance(body["error"]["message"], str)
            self.errors.append(body["error"])
            return
        assert set(body) == MESSAGE_KEYS, body.keys()
        assert body["currency"] == "SAMPLE"
        assert body["updates"], "a message carries at least one event"
        ids = [event["id"] for event in body["updates"]]
        assert ids == sorted(set(ids)), f"ids inside one message must grow: {ids}"
        for event in body["updates"]:
            assert isinstance(event["event"], str) and isinstance(event["id"], int)
            self.received.append((body["wallet"], event))

    async def sync(self) -> None:
        """Wait until the server has applied every command sent so far."""
        before = len(self.errors)
        await self.ws.send_str("sync")
        while len(self.errors) == before:
            await self.read_one()
        assert self.errors[-1]["code"] == -32700

    async def command(self, command: Any) -> None:
        await self.ws.send_json(command)
        await self.sync()

    async def until(self, event_id: int, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while event_id not in self.ids:
                await self.read_one()

    async def read_until_closed(self) -> None:
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    await self.read_one()
                except ConnectionError:
                    return


async def listen(d: DaemonClient, command: Any = None, **kwargs: Any) -> Listener:
    listener = Listener(await d.ws_connect(max_msg_size=0, **kwargs))
    if command is not None:
        await listener.command(command)
    return listener


def assert_increasing(ids: list[int]) -> None:
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"


# -- scoping and message shape ----------------------------------------------------------------


async def test_scoped_and_unscoped_delivery() -> None:
    async with running_daemon(SampleDaemon) as d:
        only_x = await listen(d, {"xpub": "X"})
        x_and_y = await listen(d, {"xpubs": ["X", {"xpub": "Y", "diskless": True}]})
        only_y = await listen(d, {"xpub": {"xpub": "Y", "quiet_mode": True}})
        everything = await listen(d)
        await everything.sync()

        ids_x = await d.call("emit", "X", 2)
        ids_y = await d.call("emit", "Y", 2)
        ids_z = await d.call("emit", "Z", 1)
        block = await d.call("broadcast_block", 7)
        for listener in (only_x, x_and_y, only_y, everything):
            await listener.until(block)  # the last event: every earlier one arrived before it

        assert only_x.ids == [*ids_x, block]
        assert x_and_y.ids == [*ids_x, *ids_y, block]
        assert only_y.ids == [*ids_y, block]
        assert everything.ids == [*ids_x, *ids_y, *ids_z, block]
        assert_increasing(everything.ids)
        assert everything.received == [
            ("X", {"event": "tick", "id": ids_x[0], "n": 0}),
            ("X", {"event": "tick", "id": ids_x[1], "n": 1}),
            ("Y", {"event": "tick", "id": ids_y[0], "n": 0}),
            ("Y", {"event": "tick", "id": ids_y[1], "n": 1}),
            ("Z", {"event": "tick", "id": ids_z[0], "n": 0}),
            (None, {"event": "new_block", "id": block, "height": 7}),
        ]


async def test_a_socket_can_change_its_scope() -> None:
    async with running_daemon(SampleDaemon) as d:
        listener = await listen(d, {"xpub": "X"})
        first = await d.call("emit", "X", 1)
        await d.call("emit", "Y", 1)
        await listener.until(first[0])
        await listener.command({"xpub": "Y"})
        ignored = await d.call("emit", "X", 1)
        wanted = await d.call("emit", "Y", 1)
        await listener.until(wanted[0])
        assert listener.ids == [*first, *wanted]
        assert ignored[0] not in listener.ids


async def test_bad_commands_get_errors_and_the_socket_keeps_working() -> None:
    async with running_daemon(SampleDaemon) as d:
        listener = await listen(d)
        bad = ["[1, 2]", '"xpub"', '{"xpubs": "X"}', '{"since": -1}', '{"since": "3"}', '{"xpub": ""}', "{"]
        for text in bad:
            before = len(listener.errors)
            await listener.ws.send_str(text)
            while len(listener.errors) == before:
                await listener.read_one()
        assert len(listener.errors) == len(bad)
        ids = await d.call("emit", "X", 1)
        await listener.until(ids[0])
        assert listener.ids == ids


# -- since replay -------------------------------------------------------------------------------


async def test_since_replays_stored_events_before_live_ones_without_duplicates() -> None:
    async with running_daemon(SampleDaemon) as d:
        stored_x = await d.call("emit", "X", 3)
        await d.call("emit", "Y", 2)
        block = await d.call("broadcast_block", 1)

        listener = await listen(d, {"xpub": "X", "since": 0})
        live_x = await d.call("emit", "X", 2)
        await listener.until(live_x[-1])
        assert listener.ids == [*stored_x, block, *live_x]
        assert [wallet for wallet, _ in listener.received] == ["X"] * 3 + [None] + ["X"] * 2

        # Everything after stored_x[0] was already sent on this socket: a replay sends none of it again.
        await listener.command({"since": stored_x[0]})
        marker = await d.call("emit", "X", 1)
        await listener.until(marker[0])
        assert listener.ids == [*stored_x, block, *live_x, *marker]


async def test_widening_the_scope_keeps_what_was_sent_on_the_socket() -> None:
    """Adding a wallet to the scope and replaying sends the new wallet's history, not the old one's again."""
    async with running_daemon(SampleDaemon) as d:
        listener = await listen(d, {"xpub": "X", "since": 0})
        sent_x = await d.call("emit", "X", 2)
        block = await d.call("broadcast_block", 1)
        stored_y = await d.call("emit", "Y", 2)  # not in scope yet: not sent
        await listener.until(block)
        assert listener.ids == [*sent_x, block]

        await listener.command({"xpubs": ["X", "Y"], "since": 0})
        await listener.until(stored_y[-1])
        marker = await d.call("emit", "X", 1)
        await listener.until(marker[0])
        assert listener.ids == [*sent_x, block, *stored_y, *marker]

        # Y leaves and comes back: what Y was sent is forgotten (it may come again), X's is kept.
        await listener.command({"xpubs": ["X"]})
        await listener.command({"xpubs": ["X", "Y"], "since": 0})
        last = await d.call("emit", "X", 1)
        await listener.until(last[0])
        assert listener.ids == [*sent_x, block, *stored_y, *marker, *stored_y, *last]


async def test_since_after_live_events_sends_only_the_missing_ones() -> None:
    async with running_daemon(SampleDaemon) as d:
        before = await d.call("emit", "X", 3)
        listener = await listen(d)  # no since: only live events
        await listener.sync()
        live = await d.call("emit", "X", 2)
        await listener.until(live[-1])
        assert listener.ids == live

        await listener.command({"since": before[0]})
        await listener.until(before[-1])
        marker = await d.call("broadcast_block", 9)
        await listener.until(marker)
        assert listener.ids == [*live, *before[1:], marker]


# -- restarts -----------------------------------------------------------------------------------


async def test_reconnecting_with_since_after_a_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    async with running_daemon(SampleDaemon, data_path=tmp_path) as d:
        listener = await listen(d, {"xpub": "X"})
        seen = await d.call("emit", "X", 3)
        await listener.until(seen[-1])
        assert listener.ids == seen
        last_seen = listener.ids[-1]
        await listener.ws.close()
        missed_before_stop = [*await d.call("emit", "X", 2), await d.call("broadcast_block", 1)]
        await d.call("emit", "Y", 2)  # another wallet's: never for this client
        assert await d.call("get_updates", xpub="X") == [
            *[{"event": "tick", "id": i, "n": n} for n, i in enumerate(seen)],
            {"event": "tick", "id": missed_before_stop[0], "n": 0},
            {"event": "tick", "id": missed_before_stop[1], "n": 1},
            {"event": "new_block", "id": missed_before_stop[2], "height": 1},
        ]
        head_before_stop = d.daemon.store.last_id()

    async with running_daemon(SampleDaemon, data_path=tmp_path) as d:
        assert d.daemon.store.last_id() == head_before_stop
        missed_after_start = await d.call("emit", "X", 2)
        assert min(missed_after_start) > head_before_stop, "ids keep growing across a restart"
        # The polling cursor of get_updates survived the restart too.
        assert [event["id"] for event in await d.call("get_updates", xpub="X")] == missed_after_start

        listener = await listen(d, {"xpub": "X", "since": last_seen})
        live = await d.call("emit", "X", 2)
        await listener.until(live[-1])
        assert listener.ids == [*missed_before_stop, *missed_after_start, *live]


# -- slow clients -------------------------------------------------------------------------------


def small_receive_buffer(addr_info: Any) -> socket.socket:
    """A client socket with a tiny kernel receive buffer, so that not reading stalls the server quickly."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def stalled_listener(d: DaemonClient, session: aiohttp.ClientSession) -> tuple[Listener, Any]:
    """A socket that reads nothing until told to, and the server's side of it."""
    known = set(d.daemon.hub.clients)
    ws = await session.ws_connect(d.url + "/ws", headers=d.headers, max_msg_size=0)
    listener = Listener(ws)
    await listener.sync()
    (server_side,) = set(d.daemon.hub.clients) - known
    return listener, server_side


def unsent_bytes(server_side: Any) -> int:
    """Bytes the server's transport holds because the kernel's socket buffers are full (aiohttp internals)."""
    return server_side.ws._writer.transport.get_write_buffer_size()


async def emit_until_stalled(d: DaemonClient, server_side: Any, size: int = 64 * 1024) -> list[int]:
    """Emit large events until the server cannot write to the stalled socket, then many more."""
    ids: list[int] = []
    async with asyncio.timeout(WAIT):
        while not unsent_bytes(server_side):
            ids += await d.call("emit_padded", "X", 10, size)
            await asyncio.sleep(0.01)  # let the server's writer run between batches
    ids += await d.call("emit_padded", "X", 50, size)
    return ids


@pytest.fixture
async def stalling_session() -> Any:
    connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def test_a_stalled_client_delays_no_one_and_catches_up_from_the_store(stalling_session: Any) -> None:
    async with running_daemon(SampleDaemon, env={"WS_QUEUE_SIZE": "5"}) as d:
        stalled, server_side = await stalled_listener(d, stalling_session)
        reader = await listen(d, {"xpub": "X"})

        ids = await emit_until_stalled(d, server_side)
        await reader.until(ids[-1])
        assert reader.ids == ids, "the reading client got every event, in order, while the other one stalled"
        assert unsent_bytes(server_side) and not server_side.ws.closed, "still stalled, still open"

        await stalled.until(ids[-1])  # reading again: the rest comes from the store
        assert stalled.ids == ids
        marker = await d.call("emit", "X", 1)
        await stalled.until(marker[0])
        assert stalled.ids == [*ids, *marker]


async def test_a_client_closed_for_not_reading_reconnects_with_since(stalling_session: Any) -> None:
    env = {"WS_QUEUE_SIZE": "5", "WS_SEND_TIMEOUT": "0.5"}
    async with running_daemon(SampleDaemon, env=env) as d:
        d.daemon.hub.close_timeout = WAIT  # the close frame waits behind the unread events until the client reads
        stalled, server_side = await stalled_listener(d, stalling_session)
        reader = await listen(d, {"xpub": "X"})

        ids = await emit_until_stalled(d, server_side)
        await reader.until(ids[-1])
        assert reader.ids == ids
        async with asyncio.timeout(WAIT):
            while not server_side.ws.closed:  # the server gives up after WS_SEND_TIMEOUT
                await asyncio.sleep(0.05)

        await stalled.read_until_closed()
        assert stalled.ws.close_code == CLOSE_TOO_SLOW
        assert stalled.ids == ids[: len(stalled.ids)], "what arrived before the close is a prefix, in order"

        assert len(stalled.ids) < len(ids), "the server gave up on it before sending everything"
        again = await listen(d, {"since": stalled.ids[-1] if stalled.ids else ids[0] - 1})
        await again.until(ids[-1])
        assert stalled.ids + again.ids == ids
        assert reader.ids == ids


async def test_a_client_that_never_reads_does_not_hold_up_shutdown(stalling_session: Any) -> None:
    # The timeout is a guard: without the close timeout, stopping the daemon hangs for good.
    async with aiohttp.ClientSession() as outside, asyncio.timeout(3 * WAIT):
        async with running_daemon(SampleDaemon, env={"WS_QUEUE_SIZE": "5"}) as d:
            d.daemon.hub.close_timeout = 0.5
            stalled, server_side = await stalled_listener(d, stalling_session)
            healthy = Listener(await outside.ws_connect(d.url + "/ws", headers=d.headers, max_msg_size=0))
            await healthy.sync()
            ids = await emit_until_stalled(d, server_side)
            await healthy.until(ids[-1])
            reader = asyncio.create_task(healthy.read_until_closed())
        await reader
        assert healthy.ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        assert server_side.transport.is_closing(), "the stalled connection was dropped"
        with pytest.raises((ConnectionError, aiohttp.ClientError)):  # it reads what was sent, then the drop
            await stalled.until(ids[-1] + 1)


# -- get_updates ----------------------------------------------------------------------------------


async def test_get_updates_with_and_without_since() -> None:
    async with running_daemon(SampleDaemon) as d:
        first = await d.call("emit", "X", 3)
        await d.call("emit", "Y", 1)
        block = await d.call("broadcast_block", 5)

        updates = await d.call("get_updates", xpub="X")
        assert updates == [
            {"event": "tick", "id": first[0], "n": 0},
            {"event": "tick", "id": first[1], "n": 1},
            {"event": "tick", "id": first[2], "n": 2},
            {"event": "new_block", "id": block, "height": 5},
        ]
        assert await d.call("get_updates", xpub="X") == [], "nothing new since the previous call"
        later = await d.call("emit", "X", 1)
        assert [u["id"] for u in await d.call("get_updates", xpub="X")] == later
        assert await d.call("get_updates", xpub={"xpub": "X", "diskless": True}) == []

        # With a cursor: stateless, and it does not move the polling cursor.
        assert [u["id"] for u in await d.call("get_updates", since=first[1], xpub="X")] == [first[2], block, *later]
        assert [u["id"] for u in await d.call("get_updates", since=0, xpub="X")] == [*first, block, *later]
        assert await d.call("get_updates", xpub="X") == []
        # Another wallet has its own cursor.
        assert [u["event"] for u in await d.call("get_updates", xpub="Y")] == ["tick", "new_block"]

        with pytest.raises(RPCError) as missing:
            await d.call("get_updates")
        assert missing.value.code == -32000
        with pytest.raises(RPCError) as negative:
            await d.call("get_updates", since=-1, xpub="X")
        assert negative.value.code == -32602


# -- retention ----------------------------------------------------------------------------------


async def test_retention_prunes_old_events_and_ids_never_repeat(tmp_path: Path) -> None:
    env = {"EVENTS_RETENTION_COUNT": "5"}
    async with running_daemon(SampleDaemon, env=env, data_path=tmp_path) as d:
        ids = await d.call("emit", "X", PRUNE_EVERY + 3)  # a retention pass runs every PRUNE_EVERY appends
        kept = [u["id"] for u in await d.call("get_updates", since=0, xpub="X")]
        assert kept == ids[PRUNE_EVERY - 5 : PRUNE_EVERY] + ids[PRUNE_EVERY:]
        assert [e.id for e in d.daemon.store.fetch(0)] == kept
        more = await d.call("emit", "X", 10)
        assert min(more) > max(ids)

    async with running_daemon(SampleDaemon, env=env, data_path=tmp_path) as d:  # start-up prunes too
        assert [e.id for e in d.daemon.store.fetch(0)] == more[-5:]
        after = await d.call("emit", "X", 1)
        assert after[0] > max(more), "pruning never lets an id come back"
        listener = await listen(d, {"xpub": "X", "since": 0})
        await listener.until(after[0])
        assert listener.ids == [*more[-5:], *after]


# -- shutdown -----------------------------------------------------------------------------------


async def test_stopping_the_daemon_closes_sockets_with_going_away() -> None:
    async with aiohttp.ClientSession() as outside:  # outlives the daemon's own test session
        async with running_daemon(SampleDaemon) as d:
            sockets = [Listener(await outside.ws_connect(d.url + "/ws", headers=d.headers)) for _ in range(3)]
            for listener in sockets:
                await listener.sync()
            readers = [asyncio.create_task(listener.read_until_closed()) for listener in sockets]
        await asyncio.gather(*readers)
        assert [listener.ws.close_code for listener in sockets] == [aiohttp.WSCloseCode.GOING_AWAY] * 3


SERVE_SAMPLE = "from tests.sample_daemon import SampleDaemon; SampleDaemon().run()"


async def test_sigterm_closes_sockets_with_going_away_and_exits(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **prefixed("SAMPLE", {"HOST": "127.0.0.1", "PORT": str(port), "DATA_PATH": str(tmp_path)})}
    process = subprocess.Popen([sys.executable, "-c", SERVE_SAMPLE], env=env, cwd=ROOT)
    try:
        async with aiohttp.ClientSession() as session:
            d = DaemonClient(f"http://127.0.0.1:{port}", session)
            await wait_until_answering(d, process, WAIT)
            listener = await listen(d, {"xpub": "X"})
            ids = await d.call("emit", "X", 2)
            await listener.until(ids[-1])
            reader = asyncio.create_task(listener.read_until_closed())
            process.send_signal(signal.SIGTERM)
            await reader
            assert listener.ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
            assert await asyncio.to_thread(process.wait, WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
