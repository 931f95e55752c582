"""Extended JSON-RPC through the real app: params forms, batches, notifications, every shared code."""

from __future__ import annotations

import asyncio

import pytest

from daemons import jsonrpc
from daemons.jsonrpc import RPCError
from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon


@pytest.fixture
async def daemon():
    async with running_daemon(SampleDaemon) as client:
        yield client


def request(method, params=None, id=1):
    body = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    return body


async def error_code(client, payload):
    status, body = await client.raw(payload)
    assert status == 200
    return body["error"]["code"]


async def test_positional_named_and_mixed_params(daemon):
    assert await daemon.call("add_numbers", 2, 3) == 5
    assert await daemon.call("add_numbers", a=2, b=7) == 9
    assert await daemon.call("add_numbers", 4, b=1) == 5
    assert await daemon.call("add", 1) == 1  # alias, default argument
    assert await daemon.call("sync_concat", "a", right="b") == "ab"  # a plain (sync) method
    _, body = await daemon.raw(request("echo", [1, [2], {"k": "v"}]))
    assert body["result"] == {"args": [1, [2]], "kwargs": {"k": "v"}}


async def test_xpub_is_split_off_and_loads_the_wallet(daemon):
    assert await daemon.call("getbalance", xpub="w1") == {"confirmed": "0"}
    assert await daemon.call("deposit", "1.25", xpub={"xpub": "w1", "diskless": True}) == "1.25"
    _, body = await daemon.raw(request("deposit", ["0.75", {"xpub": "w1"}]))
    assert body["result"] == "2.00"
    _, body = await daemon.raw(request("echo", [1, {"xpub": "w1", "x": 2}]))
    assert body["result"] == {"args": [1], "kwargs": {"x": 2}}  # never passed to the method


async def test_batch_answers_in_order_and_skips_notifications(daemon):
    batch = [
        request("add_numbers", [1, 1], id="a"),
        {"jsonrpc": "2.0", "method": "add_numbers", "params": [5]},  # notification
        request("nope", id=3),
        request("add_numbers", {"a": 10}, id=4),
    ]
    status, body = await daemon.raw(batch)
    assert status == 200
    assert [item["id"] for item in body] == ["a", 3, 4]
    assert body[0]["result"] == 2
    assert body[1]["error"] == {"code": -32601, "message": "Procedure not found"}
    assert body[2]["result"] == 10


async def test_notifications_get_no_response(daemon):
    status, body = await daemon.raw({"jsonrpc": "2.0", "method": "deposit", "params": ["3", {"xpub": "n1"}]})
    assert (status, body) == (204, None)
    status, body = await daemon.raw([{"jsonrpc": "2.0", "method": "add_numbers", "params": [1]}])
    assert (status, body) == (204, None)
    assert await daemon.call("getbalance", xpub="n1") == {"confirmed": "3"}  # it did run


async def test_empty_batch_is_one_invalid_request(daemon):
    status, body = await daemon.raw([])
    assert status == 200 and isinstance(body, dict) and body["error"]["code"] == -32600


async def test_parse_error(daemon):
    async with daemon.session.post(daemon.url, data=b"{not json", headers=daemon.headers) as response:
        body = await response.json()
    assert body == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error: body is not valid JSON"},
    }


@pytest.mark.parametrize(
    "payload",
    [
        42,
        "text",
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "1.0", "id": 1, "method": "add_numbers"},
        {"jsonrpc": "2.0", "id": [1], "method": "add_numbers"},
        {"jsonrpc": "2.0", "id": 1, "method": "add_numbers", "params": "1,2"},
    ],
)
async def test_invalid_requests(daemon, payload):
    assert await error_code(daemon, payload) == -32600


async def test_method_not_found(daemon):
    _status, body = await daemon.raw(request("no_such_method", id=7))
    assert body == {"jsonrpc": "2.0", "id": 7, "error": {"code": -32601, "message": "Procedure not found"}}


@pytest.mark.parametrize(
    "params",
    [
        [],  # missing a
        [1, 2, 3],  # too many
        {"a": 1, "c": 2},  # unknown name
        ["x"],  # wrong type
        [True],  # bool is not int
        [1, {"a": 2}],  # a twice
        [1, {"wallet": "w"}],  # injected names are not arguments
    ],
)
async def test_arguments_that_do_not_fit_are_invalid_params(daemon, params):
    assert await error_code(daemon, request("add_numbers", params)) == -32602


async def test_wrong_types_for_decimal_and_xpub(daemon):
    assert await error_code(daemon, request("deposit", [[1], {"xpub": "w"}])) == -32602
    assert await error_code(daemon, request("deposit", ["NaN", {"xpub": "w"}])) == -32602
    assert await error_code(daemon, request("getbalance", {"xpub": 5})) == -32602
    assert await error_code(daemon, request("getbalance", {"xpub": {"xpub": "w", "diskless": "yes"}})) == -32602


async def test_internal_error_is_logged_not_leaked(daemon, caplog):
    _status, body = await daemon.raw(request("fail_bug"))
    assert body["error"] == {"code": -32603, "message": "Internal error"}
    assert "ZeroDivisionError" in caplog.text
    assert await daemon.call("add_numbers", 1, 1) == 2


async def test_mapped_backend_error_gets_its_spec_code(daemon):
    _status, body = await daemon.raw(request("fail_mapped"))
    assert body["error"] == {"code": -32006, "message": "Insufficient funds in the wallet"}


async def test_wallet_required(daemon):
    assert await error_code(daemon, request("getbalance")) == -32000
    assert await error_code(daemon, request("get_updates")) == -32000


async def test_wallet_load_failure(daemon):
    _, body = await daemon.raw(request("getbalance", {"xpub": "bad-key"}))
    assert body["error"]["code"] == -32005
    assert "Invalid master key" in body["error"]["message"]
    assert await error_code(daemon, request("getbalance", {"xpub": "   "})) == -32005
    assert await error_code(daemon, request("getbalance", {"xpub": {"diskless": True}})) == -32005


async def test_network_method_waits_for_readiness(daemon):
    assert await daemon.call("getheight") == 100
    daemon.daemon.network_ready = False
    assert await error_code(daemon, request("getheight")) == -32100


async def test_concurrent_first_requests_load_a_wallet_once():
    async with running_daemon(SampleDaemon, env={"LOAD_DELAY": "0.2"}) as client:
        results = await asyncio.gather(*(client.call("getbalance", xpub="fresh") for _ in range(50)))
        assert results == [{"confirmed": "0"}] * 50
        assert client.daemon.loads == 1
        with pytest.raises(RPCError) as failed:
            await asyncio.gather(*(client.call("getbalance", xpub="bad-x") for _ in range(5)))
        assert failed.value.code == -32005
        assert "bad-x" not in client.daemon.wallets


async def test_help_lists_methods_and_describes_one(daemon):
    names = await daemon.call("help")
    assert {"add_numbers", "add", "echo", "deposit", "help", "get_updates"} <= set(names)
    assert await daemon.call("help", "add") == {
        "name": "add_numbers",
        "params": ["a", "b=0"],
        "requires_wallet": False,
        "requires_network": False,
        "doc": "Add two integers.",
    }
    described = await daemon.call("help", "deposit")
    assert described["params"] == ["amount"] and described["requires_wallet"] is True
    assert await error_code(daemon, request("help", ["nope"])) == -32601


async def test_amounts_never_become_floats(daemon):
    _, body = await daemon.raw(request("deposit", ["0.1", {"xpub": "f"}]))
    _, body = await daemon.raw(request("deposit", ["0.2", {"xpub": "f"}]))
    assert body["result"] == "0.3"


def test_protocol_functions_work_without_a_server():
    parsed = jsonrpc.parse_request(request("m", ["a", {"b": 1, "xpub": {"xpub": "seedwords", "address": "A"}}]))
    assert (parsed.args, parsed.kwargs, parsed.id, parsed.is_notification) == (["a"], {"b": 1}, 1, False)
    assert parsed.identity.key == "seedwords" and parsed.identity.fields == {"address": "A"}
    assert "seedwords" not in repr(parsed.identity)  # a seed must not reach logs through repr
    assert jsonrpc.split_params({"x": 1}) == ([], {"x": 1})
    assert jsonrpc.parse_request({"method": "m"}).is_notification
    with pytest.raises(RPCError) as err:
        jsonrpc.decode_body(b"\xff\xfe")
    assert err.value.code == -32700
    assert jsonrpc.error_response(None, RPCError(-1, "x")) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -1, "message": "x"},
    }
