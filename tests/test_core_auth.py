"""HTTP Basic auth on /, /ws and /spec: every bad header gets the contract's 401 JSON body."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from daemons.base import check_basic_auth
from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon

UNAUTHORIZED = {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Unauthorized"}, "id": None}


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


BAD_HEADERS = {
    "missing": None,
    "wrong password": basic(b"electrum:wrong"),
    "wrong user": basic(b"someone:electrumz"),
    "no colon": basic(b"electrumelectrumz"),
    "bad base64": "Basic %%%not-base64%%%",
    "not utf-8": basic(b"electrum:\xff\xfe"),
    "other scheme": "Bearer electrumz",
    "empty": "",
    "scheme only": "Basic",
    "password with extra colon": basic(b"electrum:electrumz:extra"),
}


@pytest.fixture
async def daemon():
    async with running_daemon(SampleDaemon, env={"PASSWORD": "pa:ss:word"}) as client:
        client.auth = aiohttp.BasicAuth("electrum", "pa:ss:word")
        yield client


def headers_for(value):
    return {} if value is None else {"Authorization": value}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
async def test_rpc_refuses_bad_credentials(daemon, case):
    body = {"jsonrpc": "2.0", "id": 1, "method": "help"}
    async with daemon.session.post(daemon.url + "/", json=body, headers=headers_for(BAD_HEADERS[case])) as response:
        assert response.status == 401
        assert await response.json() == UNAUTHORIZED


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
async def test_spec_refuses_bad_credentials(daemon, case):
    async with daemon.session.get(daemon.url + "/spec", headers=headers_for(BAD_HEADERS[case])) as response:
        assert response.status == 401
        assert await response.json() == UNAUTHORIZED


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
async def test_websocket_refuses_bad_credentials(daemon, case):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with daemon.session.ws_connect(daemon.url + "/ws", headers=headers_for(BAD_HEADERS[case])):
            pass
    assert refused.value.status == 401
    async with daemon.session.get(daemon.url + "/ws", headers=headers_for(BAD_HEADERS[case])) as response:
        assert response.status == 401 and await response.json() == UNAUTHORIZED


async def test_good_credentials_with_colon_in_password_pass_everywhere(daemon):
    assert await daemon.call("add_numbers", 1, 2) == 3
    async with daemon.session.get(daemon.url + "/spec", headers=daemon.headers) as response:
        assert response.status == 200
    async with daemon.ws_connect() as ws:
        assert not ws.closed


async def test_health_needs_no_auth(daemon):
    async with daemon.session.get(daemon.url + "/health") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


def test_check_basic_auth_function():
    assert check_basic_auth(basic(b"u:p:q"), "u", "p:q")
    assert check_basic_auth("basic " + base64.b64encode(b"u:p").decode(), "u", "p")
    for value in BAD_HEADERS.values():
        assert not check_basic_auth(value, "electrum", "electrumz:extra-not-this")
