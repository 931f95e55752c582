"""Opt-in websocket resume (daemons/ws_resume.py): a socket named by a client_id gets what it missed.

Against the real SampleDaemon; the last test uses the bitcart SDK's own start_websocket, whose
reconnect sends only {"xpub": X}, across a daemon restart. Waits are bounded only to turn a hang
into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from daemons.events import EventStore
from daemons.ws_resume import CLOSE_REPLACED, ResumeRegistry
from tests.sample_daemon import SampleDaemon
from tests.support import LOGIN, PASSWORD, DaemonClient, free_port, running_daemon

WAIT = 30.0


async def events_until(ws: aiohttp.ClientWebSocketResponse, last_id: int) -> list[dict[str, Any]]:
    """Every event the socket receives until the one with ``last_id``."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while not seen or seen[-1]["id"] < last_id:
            body = await ws.receive_json()
            seen.extend(body["updates"])
    return seen


async def synced(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Commands of a socket apply in order: once the error for this one arrives, the earlier ones are in force."""
    await ws.send_str("sync")
    async with asyncio.timeout(WAIT):
        while "error" not in await ws.receive_json():
            pass


async def test_reconnect_with_the_same_client_id_resumes_scope_and_cursor() -> None:
    async with running_daemon(SampleDaemon) as d:
        async with d.session.ws_connect(d.url + "/ws?client_id=shop-1", headers=d.headers) as ws:
            await ws.send_json({"xpub": "alice"})
            await synced(ws)
            first = (await d.call("emit", "alice"))[0]
            assert [e["id"] for e in await events_until(ws, first)] == [first]
        # missed while away: one of alice's, one of bob's (out of scope), one global
        missed, _, block = (
            (await d.call("emit", "alice"))[0],
            await d.call("emit", "bob"),
            await d.call("broadcast_block", 7),
        )
        headers = {**d.headers, "X-Client-Id": "shop-1"}  # the header names the same client
        async with d.session.ws_connect(d.url + "/ws", headers=headers) as ws:
            replayed = await events_until(ws, block)  # no command sent: scope and cursor come back by themselves
            assert [e["id"] for e in replayed] == [missed, block]
            live = (await d.call("emit", "alice"))[0]
            assert [e["id"] for e in await events_until(ws, live)] == [live]


async def test_client_ids_are_checked_and_a_second_socket_takes_the_name() -> None:
    async with running_daemon(SampleDaemon) as d:
        for bad in ("x" * 129, "has space", ""):
            async with d.session.get(d.url + "/ws", params={"client_id": bad}, headers=d.headers) as response:
                assert response.status == 400 and (await response.json())["error"]["code"] == -32602
        clash = {**d.headers, "X-Client-Id": "b"}
        async with d.session.get(d.url + "/ws?client_id=a", headers=clash) as response:
            assert response.status == 400
        async with d.session.ws_connect(d.url + "/ws?client_id=twice", headers=d.headers) as old:
            await synced(old)
            async with d.session.ws_connect(d.url + "/ws?client_id=twice", headers=d.headers) as new:
                closed = await old.receive(timeout=WAIT)
                assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == CLOSE_REPLACED
                event = (await d.call("emit", "anyone"))[0]
                assert [e["id"] for e in await events_until(new, event)] == [event]
        # a fresh client_id starts live, never with the whole history
        async with d.session.ws_connect(d.url + "/ws?client_id=fresh", headers=d.headers) as ws:
            event = (await d.call("emit", "anyone"))[0]
            assert [e["id"] for e in await events_until(ws, event)] == [event]


def test_the_registry_remembers_a_bounded_number_of_clients(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    registry = ResumeRegistry(store.db, max_clients=3)

    class Named:  # what the registry reads of a socket
        cursor, scope = 5, {"w"}

    for n in range(5):
        client = Named()
        registry.ids[client] = f"c{n}"  # type: ignore[index]
        registry.save(client)  # type: ignore[arg-type]
        registry.forget_oldest()
    kept = [row[0] for row in store.db.execute("SELECT client_id FROM ws_clients ORDER BY client_id")]
    assert kept == ["c2", "c3", "c4"] and registry.load("c4") == (5, {"w"})
    store.close()


@contextlib.asynccontextmanager
async def sample_on(port: int, data_path: Path) -> Any:
    async with running_daemon(SampleDaemon, {"PORT": str(port)}, data_path) as d:
        yield d


async def test_sdk_start_websocket_reconnect_after_a_restart_loses_nothing_with_a_client_id(tmp_path: Path) -> None:
    from bitcart import BTC

    port = free_port()
    got: list[tuple[str, str]] = []
    # The opt-in as the SDK carries it: a session of our own with the X-Client-Id header (and the credentials).
    session = aiohttp.ClientSession(auth=aiohttp.BasicAuth(LOGIN, PASSWORD), headers={"X-Client-Id": "shop-1"})
    coin = BTC(rpc_url=f"http://127.0.0.1:{port}", xpub="alice", session=session)

    @coin.on("new_payment")
    async def on_payment(event: str, amount: str) -> None:
        got.append((event, amount))

    async def received(count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(got) < count:
                await asyncio.sleep(0.05)

    listener = asyncio.create_task(coin.start_websocket(force_connect=True))
    try:
        async with sample_on(port, tmp_path) as d:
            await until_scoped(d)
            await d.call("deposit", "1", xpub="alice")
            await received(1)
        # stored while no socket is there (as a daemon's catch-up after a restart would): the SDK's
        # reconnect, five seconds later, sends only {"xpub": "alice"}, never a cursor
        store = EventStore(tmp_path / "events.sqlite3")
        store.append("new_payment", {"amount": "2"}, "alice")
        store.append("new_payment", {"amount": "3"}, "alice")
        store.close()
        async with sample_on(port, tmp_path) as d:
            await received(3)
            await until_scoped(d)
            await d.call("deposit", "4", xpub="alice")
            await received(4)
        assert got == [("new_payment", amount) for amount in ("1", "2", "3", "4")]
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await session.close()


async def until_scoped(d: DaemonClient) -> None:
    """The SDK's socket is connected and scoped to alice (it sends {"xpub": "alice"} right after connecting)."""
    async with asyncio.timeout(WAIT):
        while not any(client.scope == {"alice"} for client in d.daemon.hub.clients):
            await asyncio.sleep(0.05)
