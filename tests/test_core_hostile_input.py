"""Client input that used to make the loop work for long or crash a handler (issue 12, items 1, 6, 7).

Each hostile input is sent to the real SampleDaemon; the assertions count what reached the
daemon's key handling (``wallet_key``, ``load_wallet``, the method), never how long it took.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from daemons.jsonrpc import MAX_KEY_LENGTH, WalletIdentity
from daemons.rpc import rpc
from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon
from tests.test_core_websocket import listen

WAIT = 20.0  # seconds: a guard against hangs only


class KeyCountingDaemon(SampleDaemon):
    """Records every key its key handling sees, as a coin daemon's base58 decoding would get it."""

    def load_settings(self) -> None:
        super().load_settings()
        self.keys_seen: list[str] = []

    def wallet_key(self, identity: WalletIdentity) -> str:
        self.keys_seen.append(identity.key)
        return identity.key

    @rpc
    async def validatekey(self, key: str) -> bool:
        self.keys_seen.append(key)
        return True

    @rpc
    async def lookup(self, **kwargs: Any) -> int:
        return len(kwargs)


async def ws_error(listener: Any, text: str) -> dict[str, Any]:
    """Send one command and return the error it got (commands of one socket are answered in order)."""
    before = len(listener.errors)
    await listener.ws.send_str(text)
    while len(listener.errors) == before:
        await listener.read_one()
    return listener.errors[-1]


async def rpc_error(d: Any, method: str, params: Any) -> dict[str, Any]:
    status, body = await d.raw({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert status == 200
    assert "error" in body, body
    return body["error"]


LONG = "x" * 900_000  # inside the 1 MiB body limit


@pytest.mark.parametrize(
    "identity",
    [LONG, "a" * (MAX_KEY_LENGTH + 1), {"xpub": LONG}, {"xpub": "short", "address": LONG}],
    ids=["string", "one-over", "object", "field"],
)
async def test_an_overlong_identity_is_refused_before_any_key_handling(identity: Any) -> None:
    async with running_daemon(KeyCountingDaemon) as d:
        error = await rpc_error(d, "getbalance", {"xpub": identity})
        assert error["code"] == -32602
        assert "too long" in error["message"]
        assert d.daemon.keys_seen == [] and d.daemon.loads == 0
        # A key at the limit is an ordinary key.
        assert await d.call("getbalance", xpub="k" * MAX_KEY_LENGTH) == {"confirmed": "0"}


async def test_key_like_arguments_are_capped_for_every_method() -> None:
    async with running_daemon(KeyCountingDaemon) as d:
        for params in ([LONG], {"key": LONG}):
            assert (await rpc_error(d, "validatekey", params))["code"] == -32602
        assert (await rpc_error(d, "lookup", {"toAddress": LONG}))["code"] == -32602  # **kwargs, any casing
        assert d.daemon.keys_seen == []
        assert await d.call("validatekey", "k" * MAX_KEY_LENGTH) is True
        assert await d.call("lookup", message=LONG) == 1  # not a key: only the body limit bounds it


async def test_a_lone_surrogate_in_an_identity_is_invalid_params() -> None:
    async with running_daemon(KeyCountingDaemon) as d:
        for identity in ("\ud800", {"xpub": "ok", "address": "\udfff"}):
            error = await rpc_error(d, "getbalance", {"xpub": identity})
            assert error["code"] == -32602, error
        assert (await rpc_error(d, "validatekey", ["\ud800"]))["code"] == -32602
        assert d.daemon.keys_seen == [] and d.daemon.loads == 0


async def test_the_websocket_scope_command_has_the_same_caps() -> None:
    async with running_daemon(KeyCountingDaemon) as d:
        listener = await listen(d)
        for command in ({"xpub": "x" * 60_000}, {"xpubs": ["ok", "x" * 60_000]}, {"xpub": "\ud800"}):
            assert (await ws_error(listener, json.dumps(command)))["code"] == -32602
        assert d.daemon.keys_seen == [] and d.daemon.loads == 0
        ids = await d.call("emit", "X", 1)
        await listener.until(ids[0])  # the socket still works, unscoped


async def test_deeply_nested_websocket_text_is_a_parse_error_not_a_closed_socket() -> None:
    async with running_daemon(SampleDaemon) as d:
        listener = await listen(d)
        assert (await ws_error(listener, "[" * 60_000))["code"] == -32700
        ids = await d.call("emit", "X", 1)
        await listener.until(ids[0])
        assert listener.ids == ids


# -- get_updates cursors (item 7) ---------------------------------------------------------------


async def test_get_updates_with_since_never_moves_the_shared_cursor() -> None:
    async with running_daemon(SampleDaemon) as d:
        ids = await d.call("emit", "W", 4)
        assert [u["id"] for u in await d.call("get_updates", since=ids[2], xpub="W")] == [ids[3]]
        assert [u["id"] for u in await d.call("get_updates", xpub="W")] == ids, "the plain poller misses nothing"
        assert await d.call("get_updates", xpub="W") == []


async def test_a_since_above_the_newest_id_is_refused_on_post_and_on_the_websocket() -> None:
    async with running_daemon(SampleDaemon) as d:
        ids = await d.call("emit", "W", 2)
        error = await rpc_error(d, "get_updates", [{"since": 10**15, "xpub": "W"}])
        assert error["code"] == -32602 and "newest" in error["message"]
        assert (await rpc_error(d, "get_updates", [{"since": ids[-1] + 1, "xpub": "W"}]))["code"] == -32602
        assert [u["id"] for u in await d.call("get_updates", xpub="W")] == ids, "the refused call moved nothing"
        assert await d.call("get_updates", since=ids[-1], xpub="W") == []  # the newest id itself is fine

        listener = await listen(d)
        assert (await ws_error(listener, json.dumps({"xpub": "W", "since": 10**15})))["code"] == -32602
        live = await d.call("emit", "W", 1)
        await listener.until(live[0])  # the refused command changed nothing: live events still arrive
        assert listener.ids == live
