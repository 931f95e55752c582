"""The BITMESSAGE daemon against what a real PyBitmessage 0.6.3.2 node does (issue 16).

Credentials inside the node URL, recipients the node never checks, receivedTime as the node's
text column gives it, a node busy with one long call, the node's 2-s pause on bad credentials,
and every route a sent message's status takes; each against the double made faithful to the node.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from daemons import bitmessage
from daemons.bitmessage import BitmessageDaemon
from daemons.jsonrpc import RPCError
from daemons.settings import SettingsError
from tests.bitmessage_cases import (
    BAD_CHECKSUM_ADDRESS,
    LEADING_ZERO_V4_ADDRESS,
    NON_MINIMAL_VARINT_ADDRESS,
    REMOTE,
    STREAM2_ADDRESS,
    V1_ADDRESS,
    V5_ADDRESS,
)
from tests.bitmessage_double import BitmessageDouble
from tests.support import NO_ENV_FILE, DaemonClient, prefixed, running_daemon
from tests.test_bitmessage import VARIANTS, _health, daemon_for, next_event, node_env, until

# --- 1. credentials inside the node URL ------------------------------------------------------------


async def test_credentials_in_the_node_url_go_as_basic_auth_and_no_url_is_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with BitmessageDouble("xml", password="url-s3cret-pw") as node:
        env = {**node_env(node), "NODE_URL": f"http://{node.username}:url-s3cret-pw@127.0.0.1:{node.port}/"}
        del env["NODE_USER"], env["NODE_PASSWORD"]
        async with running_daemon(BitmessageDaemon, env) as d:
            assert (await d.call("clientStatus"))["softwareName"] == "PyBitmessage"
            status, ok = await _health(d)
            assert (status, ok["status"]) == (200, "ok")
            await node.stop()
            await until(lambda: _health_is(d, "backend_unavailable"))
            _, down = await _health(d)
            with pytest.raises(RPCError) as caught:
                await d.call("clientStatus")
            assert caught.value.code == -33100
    shown = json.dumps([ok, down]) + caught.value.message + caplog.text
    assert "url-s3cret-pw" not in shown
    assert f"127.0.0.1:{node.port}" not in json.dumps([ok, down]) + caplog.text  # no node URL shown or logged


def test_credentials_given_twice_are_refused() -> None:
    env = {"NODE_URL": "http://u:p@127.0.0.1:8442/", "NODE_PASSWORD": "other"}
    with pytest.raises(SettingsError, match="BITMESSAGE_NODE_URL") as refused:
        BitmessageDaemon(environ=prefixed("BITMESSAGE", env), env_file=NO_ENV_FILE)
    assert "u:p@" not in str(refused.value)


# --- 2. addresses checked before the node ----------------------------------------------------------

BAD_ADDRESSES = [
    (BAD_CHECKSUM_ADDRESS, -33008),
    ("BM-0OIl", -33009),
    (V5_ADDRESS, -33010),
    (V1_ADDRESS, -33011),
    (STREAM2_ADDRESS, -33012),
    (LEADING_ZERO_V4_ADDRESS, -33007),
    (NON_MINIMAL_VARINT_ADDRESS, -33026),
]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_send_checks_both_addresses_before_the_node(variant: str) -> None:
    async with BitmessageDouble(variant) as node, daemon_for(node, variant) as d:
        me = node.add_identity("me")
        await d.call("clientStatus")
        before = node.requests
        for bad, code in BAD_ADDRESSES:
            calls = [
                ("toAddress", d.call("sendMessage", bad, me, "s", "m")),
                ("toAddress", d.call("send_message", bad, "s", "m", xpub=me)),
                ("fromAddress", d.call("sendMessage", me, bad, "s", "m", raw=True)),
                ("fromAddress", d.call("sendBroadcast", fromAddress=bad, subject="s", message="m")),
            ]
            for parameter, call in calls:
                with pytest.raises(RPCError) as caught:
                    await call
                assert caught.value.code == code, (bad, caught.value.message)
                assert parameter in caught.value.message and bad in caught.value.message
        assert node.requests - before <= len(BAD_ADDRESSES)  # at most send_message's identity checks
        assert node.state.sent == []


@pytest.mark.parametrize(("variant", "wording"), [("xml", "at least 5"), ("legacy", "at most 0")])
async def test_the_double_answers_a_mistyped_recipient_as_the_node_does(variant: str, wording: str) -> None:
    """What the checks above spare the user: the node's arity message, observed on PyBitmessage 0.6.3.2."""
    async with BitmessageDouble(variant) as node, daemon_for(node, variant) as d:
        me = node.add_identity("me")
        node_call = d.daemon.client.call  # straight to the node, past the daemon's checks
        with pytest.raises(Exception, match=f"API Error 0000: Command sendMessage takes {wording} parameters"):
            await node_call("sendMessage", BAD_CHECKSUM_ADDRESS, me, "cw==", "bQ==", raw=True)
        full = [BAD_CHECKSUM_ADDRESS, me, "cw==", "bQ==", 2, 3600]
        with pytest.raises(Exception, match=r"API Error 0000: (Unexpected API Failure - b2a_hex|Command sendMessage)"):
            await node_call("sendMessage", *full, raw=True)


# --- 3. receivedTime -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_received_time_is_integer_seconds(variant: str) -> None:
    async with BitmessageDouble(variant) as node, daemon_for(node, variant) as d, d.ws_connect() as ws:
        me = node.add_identity("me")
        await ws.send_json({"xpub": me, "since": 0})
        await until(lambda: _baseline_taken(d))
        msgid = node.deliver(me, REMOTE, "subject", "body")
        event = await next_event(ws, "new_message")
        when = node.state.inbox[-1].when
        assert (event["msgid"], event["receivedTime"]) == (msgid, when)
        assert (await d.call("inbox", xpub=me))[0]["receivedTime"] == when
        row = (await d.call("getInboxMessageById", msgid))["inboxMessage"][0]
        assert row["receivedTime"] == when and type(row["receivedTime"]) is int
        raw = await d.call("getAllInboxMessages", raw=True)
        raw = json.loads(raw) if variant == "legacy" else raw
        assert raw["inboxMessages"][0]["receivedTime"] == str(when)  # as the node's text column holds it


# --- 4. busy is not dead ---------------------------------------------------------------------------


async def test_long_calls_queue_in_the_daemon_and_health_says_busy(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # Each call keeps the node 1.5 s; four take 6 s in a row at the node, over the 4-s timeout,
    # which must count only from the moment each call is sent.
    node = BitmessageDouble("json", address_delay=0.75)
    async with node, running_daemon(BitmessageDaemon, node_env(node, NODE_TIMEOUT="4")) as d:
        await until(lambda: _health_is(d, "ok"))
        calls = [asyncio.ensure_future(d.call("createDeterministicAddresses", f"seed {i}", 2)) for i in range(4)]
        body = await _wait_health(d, "busy")
        assert "createDeterministicAddresses" in body["node"]["error"]
        results = await asyncio.gather(*calls)
        assert [len(r["addresses"]) for r in results] == [2, 2, 2, 2]
        await until(lambda: _health_is(d, "ok"))
        assert d.daemon.node_error is None
    assert "poll failed" not in caplog.text


async def test_an_unanswered_call_is_a_timeout_and_the_node_busy_until_it_answers() -> None:
    node = BitmessageDouble("xml", address_delay=1.0)
    async with node, running_daemon(BitmessageDaemon, node_env(node, NODE_TIMEOUT="0.5")) as d:
        with pytest.raises(RPCError) as caught:
            await d.call("createDeterministicAddresses", "seed", 3)
        assert caught.value.code == -33103
        assert "createDeterministicAddresses" in caught.value.message
        status, body = await _health(d)
        assert (status, body["status"]) == (503, "busy")
        await until(lambda: _health_is(d, "ok"))  # once the node answers again
        assert len(node.state.identities) == 3  # the node did the work it was given


# --- 5. refused credentials: back off --------------------------------------------------------------


async def test_refused_credentials_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bitmessage, "AUTH_BACKOFF", (60.0, 120.0))  # longer than this test
    async with BitmessageDouble("xml", auth_delay=0) as node:
        env = {**node_env(node), "NODE_PASSWORD": "wrong-password"}
        async with running_daemon(BitmessageDaemon, env) as d:
            await until(lambda: _refused(node))
            for _ in range(3):
                with pytest.raises(RPCError) as caught:
                    await d.call("clientStatus")
                assert caught.value.code == -33101
                assert (await _health(d))[1]["status"] == "backend_unavailable"
            await asyncio.sleep(0.3)  # several poll intervals
            assert node.refused == 1  # neither the poller, nor the calls, nor /health asked again


async def test_backoff_ends_when_a_call_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bitmessage, "AUTH_BACKOFF", (0.05, 0.2))
    async with BitmessageDouble("json", auth_delay=0, password="old-password") as node:
        env = {**node_env(node), "NODE_PASSWORD": "new-password"}
        async with running_daemon(BitmessageDaemon, env) as d:
            await until(lambda: _refused(node, 3))
            assert d.daemon.client.refusals >= 2
            node.password = "new-password"  # the node's keys.dat is fixed and the node restarted
            await until(lambda: _health_is(d, "ok"))
            assert d.daemon.client.refusals == 0
            assert (await d.call("clientStatus"))["softwareName"] == "PyBitmessage"


def test_backoff_doubles_up_to_its_bound() -> None:
    from daemons.bitmessage_client import auth_backoff

    assert [auth_backoff(n, 2.0, 120.0) for n in range(1, 9)] == [2, 4, 8, 16, 32, 64, 120, 120]
    assert auth_backoff(10_000, 2.0, 120.0) == 120


# --- 6. every status transition is an event --------------------------------------------------------

Step = tuple[str, str]  # (what the node does next, the status it leads to)
ROUTES: dict[str, list[Step]] = {
    "to itself": [("advance_sent", "doingmsgpow"), ("advance_sent", "msgsentnoackexpected")],
    "pubkey unknown, resent twice": [
        ("advance_sent", "doingpubkeypow"),
        ("advance_sent", "awaitingpubkey"),
        ("resend", "msgqueued"),
        ("advance_sent", "awaitingpubkey"),  # v4: the earlier request still counts, none is sent
        ("advance_sent", "doingmsgpow"),
        ("advance_sent", "msgsent"),
        ("resend", "msgqueued"),
        ("advance_sent", "doingmsgpow"),
        ("advance_sent", "msgsent"),
        ("advance_sent", "ackreceived"),
    ],
    "too difficult, then forced": [
        ("advance_sent", "doingmsgpow"),
        ("advance_sent", "toodifficult"),
        ("force_pow", "forcepow"),
        ("advance_sent", "msgsent"),
        ("advance_sent", "ackreceived"),
    ],
    "no acks": [("advance_sent", "doingmsgpow"), ("advance_sent", "msgsentnoackexpected")],
    "bad key": [("advance_sent", "doingmsgpow"), ("advance_sent", "badkey")],
    "broadcast": [("advance_sent", "doingbroadcastpow"), ("advance_sent", "broadcastsent")],
}
PEERS: dict[str, dict[str, bool]] = {
    "pubkey unknown, resent twice": {},
    "too difficult, then forced": {"pubkey": True, "too_difficult": True},
    "no acks": {"pubkey": True, "acks": False},
    "bad key": {"pubkey": True, "bad_key": True},
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_each_status_transition_is_an_event(route: str) -> None:
    async with BitmessageDouble("xml") as node, daemon_for(node) as d, d.ws_connect() as ws:
        me = node.add_identity("me")
        await ws.send_json({"xpub": me, "since": 0})
        if route == "broadcast":
            ack = await d.call("sendBroadcast", subject="s", message="m", xpub=me)
        else:
            to = me if route == "to itself" else REMOTE
            node.peer(REMOTE, **PEERS.get(route, {}))
            ack = await d.call("send_message", to, "s", "m", xpub=me)
        seen = [await _status_event(ws, ack)]
        for action, status in ROUTES[route]:
            getattr(node, action)(ack)
            assert node.state.sent[0].status == status, (route, action)
            seen.append(await _status_event(ws, ack))
        first = "broadcastqueued" if route == "broadcast" else "msgqueued"
        assert seen == [first, *[status for _, status in ROUTES[route]]]
        if route == "to itself":  # the node also put the message into its own inbox
            updates = await d.call("get_updates", xpub=me, since=0)
            assert [u["toAddress"] for u in updates if u["event"] == "new_message"] == [me]
        node.advance_sent(ack)  # nothing follows a final status
        node.resend(ack)
        assert node.state.sent[0].status == seen[-1]


async def test_the_first_status_is_reported_at_once() -> None:
    """A node can finish a message before the next poll: its first status still comes, from the send."""
    node = BitmessageDouble("json")
    async with node, running_daemon(BitmessageDaemon, node_env(node, POLL_INTERVAL="3600")) as d, d.ws_connect() as ws:
        me = node.add_identity("me")
        await ws.send_json({"xpub": me, "since": 0})
        ack = await d.call("send_message", me, "s", "m", xpub=me)
        node.advance_sent(ack)
        node.advance_sent(ack)  # final now, and no poll will come in this test
        assert await _status_event(ws, ack) == "msgqueued"
        cast = await d.call("sendBroadcast", subject="s", message="m", raw=False, xpub=me)
        assert await _status_event(ws, cast) == "broadcastqueued"


# --- helpers ---------------------------------------------------------------------------------------


async def _status_event(ws: Any, ack: str) -> str:
    event = await next_event(ws, "message_status")
    assert event["ackdata"] == ack
    return event["status"]


async def _health_is(d: DaemonClient, status: str) -> bool:
    return (await _health(d))[1]["status"] == status


async def _wait_health(d: DaemonClient, status: str) -> dict[str, Any]:
    """The first /health body with this status (a guard against a hang, not a timing assertion)."""

    async def loop() -> dict[str, Any]:
        while (body := (await _health(d))[1])["status"] != status:
            await asyncio.sleep(0.02)
        return body

    return await asyncio.wait_for(loop(), 20.0)


async def _baseline_taken(d: DaemonClient) -> bool:
    """The daemon's first look at the inbox is done: what arrives from now on is new."""
    return d.daemon.watcher is not None and d.daemon.watcher.get_state("inbox_baseline") is not None


async def _refused(node: BitmessageDouble, times: int = 1) -> bool:
    return node.refused >= times
