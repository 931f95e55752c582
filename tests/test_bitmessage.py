"""The BITMESSAGE daemon against the PyBitmessage double: commands, errors, events, outages."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bitcart.providers.jsonrpcrequests import RPCProxy

from daemons import bitmessage_commands as bmc
from daemons.bitmessage import BitmessageDaemon
from daemons.jsonrpc import RPCError
from daemons.settings import SettingsError
from tests.bitmessage_cases import ERROR_NODE_WITHOUT, GOOD_ADDRESS, REMOTE, TEXT, error_cases, exercise_all
from tests.bitmessage_double import BitmessageDouble
from tests.support import LOGIN, NO_ENV_FILE, PASSWORD, DaemonClient, prefixed, running_daemon

VARIANTS = ("xml", "json", "legacy")
WAIT = 20.0  # a guard against a hang, not a timing assertion


def node_env(node: BitmessageDouble, variant: str = "auto", **extra: str) -> dict[str, str]:
    return {
        "NODE_URL": node.url,
        "NODE_USER": node.username,
        "NODE_PASSWORD": node.password,
        "API_VARIANT": variant,
        "POLL_INTERVAL": "0.05",
        **extra,
    }


@contextlib.asynccontextmanager
async def daemon_for(node: BitmessageDouble, variant: str = "auto", **kw: Any) -> AsyncIterator[DaemonClient]:
    async with running_daemon(BitmessageDaemon, node_env(node, variant), **kw) as d:
        yield d


async def next_event(ws: Any, name: str) -> dict[str, Any]:
    """The next event called `name` on this socket; other events before it are skipped."""

    async def read() -> dict[str, Any]:
        async for message in ws:
            for event in json.loads(message.data).get("updates", []):
                if event["event"] == name:
                    return event
        raise AssertionError("socket closed")

    return await asyncio.wait_for(read(), WAIT)


async def events_until(ws: Any, last_id: int) -> list[dict[str, Any]]:
    """Every event this socket has not read yet, up to and including the one with id `last_id`."""

    async def read() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async for message in ws:
            events += json.loads(message.data).get("updates", [])
            if events and events[-1]["id"] >= last_id:
                return events
        raise AssertionError("socket closed")

    return await asyncio.wait_for(read(), WAIT)


async def until(predicate: Any) -> None:
    async def loop() -> None:
        while not await predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), WAIT)


@pytest.mark.parametrize("variant", [*VARIANTS, "auto"])
async def test_every_command_through_the_daemon(variant: str) -> None:
    node = BitmessageDouble("json" if variant == "auto" else variant, address_delay=0)
    async with node, daemon_for(node, variant) as d:
        called = await exercise_all(d.call, node)
        assert called == set(bmc.BY_NAME)
        assert set(bmc.BY_NAME) <= set(await d.call("help"))


@pytest.mark.parametrize("variant", VARIANTS)
async def test_positional_arguments_identity_and_raw(variant: str) -> None:
    async with BitmessageDouble(variant) as node, daemon_for(node) as d:
        me, other = node.add_identity("me"), node.add_identity("other")
        ack = await d.call("sendMessage", other, me, TEXT, TEXT)
        sent = await d.call("getSentMessageByAckData", ack)
        assert sent["sentMessage"][0]["subject"] == TEXT
        # The identity is the default fromAddress and scopes inbox queries.
        ack2 = await d.call("sendMessage", toAddress=other, subject="s", message="m", xpub=me)
        assert (await d.call("message_status", ack2)) == "msgqueued"
        assert {row["ackData"]: row["fromAddress"] for row in await d.call("sent", xpub=me)}[ack2] == me
        to_me, to_other = node.deliver(me, other, "for me", "x"), node.deliver(other, me, "for other", "y")
        assert [row["msgid"] for row in await d.call("inbox", xpub=me)] == [to_me]
        assert [row["msgid"] for row in await d.call("inbox", xpub=me.removeprefix("BM-"))] == [to_me]
        assert {r["msgid"] for r in (await d.call("getAllInboxMessageIds", xpub=me))["inboxMessageIds"]} == {to_me}
        assert await d.call("getInboxMessageById", to_other, xpub=me) is None
        assert {row["msgid"] for row in await d.call("inbox")} == {to_me, to_other}
        plain = await d.call("send_message", other, TEXT, TEXT, xpub=me)
        assert (await d.call("getSentMessageByAckData", plain))["sentMessage"][0]["message"] == TEXT
        raw = await d.call("getSentMessageByAckData", plain, raw=True)
        assert (json.loads(raw) if variant == "legacy" else raw)["sentMessage"][0]["message"] != TEXT
        with pytest.raises(RPCError) as caught:
            await d.call("inbox", xpub=GOOD_ADDRESS)  # a valid address, but not the node's
        assert caught.value.code == -32005
        with pytest.raises(RPCError) as caught:
            await d.call("sendMessage", other, toAddress=other)
        assert caught.value.code == -32602
        with pytest.raises(RPCError) as caught:
            await d.call("sendMessage", toAddress=other, subject="s", message="m")  # no sender at all
        assert caught.value.code == -32602


@pytest.mark.parametrize("variant", VARIANTS)
async def test_numbered_errors_reach_the_sdk_as_named_exceptions(variant: str) -> None:
    async with BitmessageDouble(variant, without=ERROR_NODE_WITHOUT) as node, daemon_for(node) as d:
        spec = d.daemon.spec["exceptions"]
        proxy = RPCProxy(d.url, LOGIN, PASSWORD)
        try:
            for case in error_cases(node):
                for name, args in case.prepare:
                    await d.call(name, *args)
                extra = {"raw": True} if case.raw else {}
                with pytest.raises(RPCError) as caught:
                    await d.call(case.command, *case.args, **case.kwargs, **extra)
                code = -33000 - case.number
                assert caught.value.code == code, (case, caught.value.message)
                assert caught.value.message.startswith(f"API Error {case.number:04d}: ")
                if case.prepare:
                    continue  # already there now: the SDK's call below would fail the same way
                with pytest.raises(Exception) as sdk_error:
                    await getattr(proxy, case.command)(*case.args, **case.kwargs, **extra)
                assert type(sdk_error.value).__name__ == spec[str(code)]["exc_name"]
        finally:
            await proxy._close()


async def test_new_message_reaches_only_its_scope() -> None:
    async with BitmessageDouble("json") as node, daemon_for(node) as d:
        me, other, peer = node.add_identity("me"), node.add_identity("other"), node.add_identity("peer")
        async with d.ws_connect() as mine, d.ws_connect() as others, d.ws_connect() as everyone:
            await mine.send_json({"xpub": me, "since": 0})
            await others.send_json({"xpub": other, "since": 0})
            await everyone.send_json({"since": 0})
            assert (await next_event(everyone, "node_status"))["networkStatus"] == "notConnected"
            msgid = node.deliver(me, peer, TEXT, "body")
            got = await next_event(mine, "new_message")
            assert got == {**got, "msgid": msgid, "toAddress": me, "fromAddress": peer, "subject": TEXT}
            assert (await next_event(everyone, "new_message"))["msgid"] == msgid
            node.set_network(3, incoming=True)  # a global event every socket gets
            status = await next_event(everyone, "node_status")
            assert status == {
                **status,
                "networkStatus": "connectedAndReceivingIncomingConnections",
                "networkConnections": 3,
            }
            assert [e["event"] for e in await events_until(others, status["id"])] == ["node_status", "node_status"]
            assert [e["event"] for e in await events_until(mine, status["id"])] == ["node_status"]
        updates = await d.call("get_updates", xpub=me, since=0)
        assert [u["msgid"] for u in updates if u["event"] == "new_message"] == [msgid]


async def test_node_away_and_back_loses_nothing() -> None:
    async with BitmessageDouble("legacy") as node, daemon_for(node) as d, d.ws_connect() as ws:
        me, peer = node.add_identity("me"), node.add_identity("peer")
        await ws.send_json({"xpub": me, "since": 0})
        await until(lambda: _health_ok(d))
        await node.stop()
        with pytest.raises(RPCError) as caught:
            await d.call("clientStatus")
        assert caught.value.code == -33100
        # a poll that was at the node when it went away may make /health say busy for a moment first
        await until(lambda: _health_is_unavailable(d))
        status, body = await _health(d)
        assert (status, body["status"]) == (503, "backend_unavailable")
        missed = node.deliver(me, peer, "while away", "x")
        await node.start()
        assert (await next_event(ws, "new_message"))["msgid"] == missed
        assert (await _health(d))[0] == 200
        assert (await d.call("clientStatus"))["softwareName"] == "PyBitmessage"


async def test_daemon_restart_repeats_nothing_and_misses_nothing(tmp_path: Path) -> None:
    async with BitmessageDouble("json") as node:
        me, peer = node.add_identity("me"), REMOTE  # a remote recipient: its pubkey is fetched first
        old = node.deliver(me, peer, "before the daemon", "history")
        async with daemon_for(node, data_path=tmp_path) as d:
            ack = await d.call("send_message", peer, "s", "m", xpub=me)
            first = node.deliver(me, peer, "first", "x")
            await until(lambda: _events_of(d, me, {"new_message", "message_status"}, 2))
        node.advance_sent(ack)
        second = node.deliver(me, peer, "second", "y")
        async with daemon_for(node, data_path=tmp_path) as d:
            await until(lambda: _events_of(d, me, {"new_message", "message_status"}, 4))
            node.advance_sent(ack)
            await until(lambda: _events_of(d, me, {"message_status"}, 3))
            events = await d.call("get_updates", xpub=me, since=0)
        messages = [e["msgid"] for e in events if e["event"] == "new_message"]
        statuses = [e["status"] for e in events if e["event"] == "message_status"]
        assert messages == [first, second] and old not in messages
        assert statuses == ["msgqueued", "doingpubkeypow", "awaitingpubkey"]


async def test_bad_node_credentials_and_spec(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    async with BitmessageDouble("xml", auth_delay=0) as node:
        env = {**node_env(node), "NODE_PASSWORD": "n0t-the-s3cret"}
        async with running_daemon(BitmessageDaemon, env) as d:
            with pytest.raises(RPCError) as caught:
                await d.call("clientStatus")
            assert caught.value.code == -33101
            assert (await _health(d))[1]["status"] == "backend_unavailable"
            async with d.session.get(d.url + "/spec", headers=d.headers) as response:
                spec = await response.json()
            codes = {str(-33000 - n) for n in range(28)} | {"-33100", "-33101", "-33102", "-33103"}
            assert codes <= set(spec["exceptions"])
            assert set(bmc.BY_NAME) <= set(spec["methods"])
            assert spec["methods"]["sendMessage"]["params"][3:] == [
                "message=<required>",
                "encodingType=2",
                "TTL=345600",
                "raw=False",
            ]
            assert "n0t-the-s3cret" not in json.dumps(spec) + json.dumps(await _health(d)) + caplog.text


def test_settings() -> None:
    def make(**env: str) -> BitmessageDaemon:
        return BitmessageDaemon(environ=prefixed("BITMESSAGE", env), env_file=NO_ENV_FILE)

    daemon = make()
    assert (daemon.settings.port, daemon.api_variant, daemon.node_url) == (5012, "auto", "http://127.0.0.1:8442/")
    assert make(API_VARIANT="Legacy").api_variant == "legacy"
    for bad in ({"API_VARIANT": "soap"}, {"POLL_INTERVAL": "-1"}, {"NODE_USER": "a:b"}):
        with pytest.raises(SettingsError, match="BITMESSAGE_"):
            make(**bad)


async def _health(d: DaemonClient) -> tuple[int, dict]:
    async with d.session.get(d.url + "/health") as response:
        return response.status, await response.json()


async def _health_is_unavailable(d: DaemonClient) -> bool:
    return (await _health(d))[1]["status"] == "backend_unavailable"


async def _health_ok(d: DaemonClient) -> bool:
    return (await _health(d))[0] == 200


async def _events_of(d: DaemonClient, wallet: str, names: set[str], count: int) -> bool:
    store = d.daemon.store
    return len([e for e in store.fetch(0, [wallet]) if e.name in names]) >= count
