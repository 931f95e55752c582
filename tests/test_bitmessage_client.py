"""The node API client against the PyBitmessage double, in the three API variants."""

from __future__ import annotations

import base64

import pytest

from daemons import bitmessage_commands as bmc
from daemons.bitmessage_client import (
    BitmessageClient,
    NodeAPIError,
    NodeAuthError,
    NodeProtocolError,
    NodeUnavailable,
)
from tests.bitmessage_cases import ERROR_NODE_WITHOUT, TEXT, error_cases, exercise_all
from tests.bitmessage_double import BitmessageDouble
from tests.support import free_port

VARIANTS = ("xml", "json", "legacy")


def client_of(node: BitmessageDouble, variant: str = "auto", password: str | None = None) -> BitmessageClient:
    return BitmessageClient(node.url, node.username, password or node.password, variant=variant, timeout=10)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_detects_the_variant(variant: str) -> None:
    async with BitmessageDouble(variant) as node:
        client = client_of(node)
        try:
            assert await client.ensure_variant() == variant
        finally:
            await client.close()


@pytest.mark.parametrize("variant", VARIANTS)
async def test_every_command_under_every_name(variant: str) -> None:
    async with BitmessageDouble(variant, address_delay=0) as node:
        client = client_of(node, variant)
        try:
            called = await exercise_all(client.call, node)
        finally:
            await client.close()
        assert called == set(bmc.BY_NAME)
        assert not node.running  # the last command was shutdown


@pytest.mark.parametrize("variant", VARIANTS)
async def test_positional_arguments_and_raw_values(variant: str) -> None:
    async with BitmessageDouble(variant) as node:
        me = node.add_identity("me")
        client = client_of(node)
        try:
            ack = await client.call("sendMessage", me, me, TEXT, TEXT)
            raw_subject = base64.b64encode(TEXT.encode()).decode()
            raw = await client.call("getSentMessageByAckData", ack, raw=True)
            if variant == "legacy":
                assert isinstance(raw, str) and raw_subject in raw  # a JSON string, left as the node sent it
            else:
                assert raw["sentMessage"][0]["subject"] == raw_subject
            assert await client.call("addSubscription", me, raw_subject, raw=True) == "Added subscription."
            assert node.state.subscriptions[-1][0] == TEXT.encode()
        finally:
            await client.close()


@pytest.mark.parametrize("variant", VARIANTS)
async def test_numbered_errors(variant: str) -> None:
    async with BitmessageDouble(variant, without=ERROR_NODE_WITHOUT) as node:
        client = client_of(node)
        try:
            cases = error_cases(node)
            assert [case.number for case in cases] == list(range(28))
            for case in cases:
                for name, args in case.prepare:
                    await client.call(name, *args)
                with pytest.raises(NodeAPIError) as caught:
                    await client.call(case.command, *case.args, raw=case.raw, **case.kwargs)
                assert caught.value.number == case.number, (case, caught.value)
                assert str(caught.value).startswith(f"API Error {case.number:04d}: ")
        finally:
            await client.close()


async def test_named_arguments_are_checked_before_the_node() -> None:
    async with BitmessageDouble("json") as node:
        client = client_of(node)
        try:
            with pytest.raises(bmc.BindError):
                await client.call("sendMessage", toAddress="BM-x", subjet="typo")
            with pytest.raises(bmc.BindError):
                await client.call("notACommand")
        finally:
            await client.close()
        assert node.requests <= 1  # at most the variant probe reached the node


@pytest.mark.parametrize("variant", VARIANTS)
async def test_bad_credentials(variant: str) -> None:
    async with BitmessageDouble(variant, auth_delay=0) as node:
        client = client_of(node, variant, password="wrong")
        try:
            with pytest.raises(NodeAuthError):
                await client.call("clientStatus")
        finally:
            await client.close()


async def test_unreachable_node_then_back() -> None:
    node = BitmessageDouble("json")
    port = free_port()
    client = BitmessageClient(f"http://127.0.0.1:{port}/", node.username, node.password, timeout=5)
    try:
        with pytest.raises(NodeUnavailable):
            await client.call("clientStatus")
        await node.start(port)
        assert (await client.call("clientStatus"))["softwareName"] == "PyBitmessage"
        await node.stop()
        with pytest.raises(NodeUnavailable):
            await client.call("clientStatus")
    finally:
        await client.close()
        await node.stop()


async def test_wrong_variant_is_a_protocol_error() -> None:
    async with BitmessageDouble("json") as node:
        client = client_of(node, "xml")
        try:
            with pytest.raises(NodeProtocolError):
                await client.call("clientStatus")
        finally:
            await client.close()


def test_bind_fills_gaps_with_documented_defaults() -> None:
    cmd = bmc.find("sendMessage")
    assert cmd is not None
    assert bmc.bind(cmd, ["to", "from", "s", "m"]) == ["to", "from", "s", "m"]
    assert bmc.bind(cmd, [], {"toAddress": "t", "fromAddress": "f", "subject": "s", "message": "m", "TTL": 3600}) == [
        "t", "f", "s", "m", 2, 3600
    ]  # fmt: skip
    with pytest.raises(bmc.BindError):
        bmc.bind(cmd, ["to"], {"toAddress": "again"})
    with pytest.raises(bmc.BindError):
        bmc.bind(cmd, ["to", "from", "s"])
