"""The XMRig API client against the double of XMRig 6's HTTP API (tests/xmrig_double.py)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from daemons.xmrig_client import (
    ConfigRejected,
    MinerBadResponse,
    MinerEndpoint,
    MinerForbidden,
    MinerNotReady,
    MinerRestricted,
    MinerUnauthorized,
    MinerUnavailable,
    NotXMRig,
    XMRigClient,
    normalize_url,
)
from tests.xmrig_double import XMRigDouble, free_port, impostor

TOKEN = "secret-token"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def miner() -> AsyncIterator[XMRigDouble]:
    async with XMRigDouble(worker_id="rig1", token=TOKEN) as double:
        yield double


def client_for(double: XMRigDouble, token: str | None = TOKEN, **kw) -> XMRigClient:
    return XMRigClient(MinerEndpoint("rig1", double.url, token), **kw)


async def raw(double: XMRigDouble, method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    """Everything the miner writes on one connection for one request, up to its close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}{length}\r\n".encode() + body)
    data = await reader.read()
    writer.close()
    return data


# ---------------------------------------------------------------- the double keeps XMRig 6.26.0's wire behaviour
async def test_double_speaks_like_xmrig(miner: XMRigDouble) -> None:
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    unauthorized = await raw(miner, "GET", "/2/summary")
    assert unauthorized.startswith(b"HTTP/1.1 401 UNAUTHORIZED\r\nAccess-Control-Allow-Headers: ")
    assert unauthorized.endswith(b'\r\n\r\n{\n    "status": 401,\n    "error": "UNAUTHORIZED"\n}')
    assert b'"error": "FORBIDDEN"' in await raw(miner, "GET", "/2/summary", headers="Authorization: Bearer nope\r\n")
    assert b"405 METHOD_NOT_ALLOWED" in await raw(miner, "PATCH", "/2/config", headers=auth)
    assert b'"error": "NOT_FOUND"' in await raw(miner, "GET", "/3/nothing", headers=auth)
    assert (await raw(miner, "OPTIONS", "/2/summary")).endswith(b"Connection: close\r\n\r\n")
    typed = auth + "Content-Type: application/json\r\n"
    assert b'"error": "BAD_REQUEST"' in await raw(miner, "PUT", "/2/config", b'{"pools": []}', typed)
    assert b"415 UNSUPPORTED_MEDIA_TYPE" in await raw(miner, "POST", "/json_rpc", b"{}", auth)
    # /json_rpc: one answer written twice on the same connection, then closed
    answer = await raw(miner, "POST", "/json_rpc", b'{"method": "nope", "id": 7}', typed)
    first, rest = answer.split(b"\r\n\r\n", 1)
    body = rest[: int(first.split(b"Content-Length: ")[1].split(b"\r\n")[0])]
    assert answer == (first + b"\r\n\r\n" + body) * 2
    assert json.loads(body) == {"error": {"code": -32601, "message": "Method not found"}, "jsonrpc": "2.0", "id": 7}
    v1 = json.loads((await raw(miner, "GET", "/1/summary", headers=auth)).split(b"\r\n\r\n", 1)[1])
    assert "threads" in v1["hashrate"] and v1["hugepages"] is True


async def test_aiohttp_rejects_what_xmrig_writes_on_json_rpc(
    miner: XMRigDouble, session: aiohttp.ClientSession
) -> None:
    """Why the client speaks HTTP itself: aiohttp refuses XMRig's doubled /json_rpc answer (issue 15, item 1)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    body = json.dumps({"method": "pause", "jsonrpc": "2.0", "id": 1})
    with pytest.raises(aiohttp.ClientResponseError):
        async with session.post(miner.url + "/json_rpc", data=body, headers=headers) as response:
            await response.read()
    assert miner.paused  # the miner obeyed all the same
    assert await client_for(miner).resume() == {"status": "OK"}
    assert not miner.paused


# ---------------------------------------------------------------- reads
async def test_summary_backends_config(miner: XMRigDouble) -> None:
    client = client_for(miner)
    summary = await client.summary()
    assert summary["worker_id"] == "rig1"
    assert summary["hashrate"]["total"] == miner.hashrate
    assert summary["connection"]["pool"] == miner.pool
    backends = await client.backends()
    assert [b["type"] for b in backends] == ["cpu"]  # a CPU-only build lists only what was built
    config = await client.config()
    assert config["pools"][0]["url"] == miner.pool
    # the token travels as Bearer auth
    assert miner.requests[-1][2]["authorization"] == f"Bearer {TOKEN}"


async def test_restricted_miner_without_token_is_readable() -> None:
    async with XMRigDouble(token=None, restricted=True) as double:
        client = client_for(double, token=None)
        assert (await client.summary())["restricted"] is True
        with pytest.raises(MinerRestricted):
            await client.config()
        with pytest.raises(MinerRestricted):
            await client.pause()


# ---------------------------------------------------------------- writes
async def test_pause_resume_stop_start(miner: XMRigDouble) -> None:
    client = client_for(miner)
    assert await client.pause() == {"status": "OK"}
    assert (await client.summary())["paused"] is True
    await client.resume()
    assert (await client.summary())["paused"] is False
    await client.stop()
    assert (await client.summary())["hashrate"]["total"] == [0.0, 0.0, 0.0]  # XMRig 6.26: 0.0, not null
    assert "threads" not in (await client.backends())[0]
    await client.start()
    assert (await client.summary())["hashrate"]["total"] == [None, None, None]  # windows fill again


async def test_put_config_replaces_and_validates(miner: XMRigDouble) -> None:
    client = client_for(miner)
    config = await client.config()
    config["pools"][0]["url"] = "other.pool:4444"
    await client.put_config(config)
    assert (await client.summary())["connection"]["pool"] == "other.pool:4444"
    with pytest.raises(ConfigRejected):
        await client.put_config({"pools": []})


# ---------------------------------------------------------------- failures
async def test_auth_failures(miner: XMRigDouble) -> None:
    with pytest.raises(MinerUnauthorized, match="requires an access token") as missing:
        await client_for(miner, token=None).summary()
    assert missing.value.state == "unauthorized"
    bad = client_for(miner, token="not-the-token")
    for call in (bad.summary, bad.config, bad.pause):
        with pytest.raises(MinerForbidden, match="rejected the access token") as info:
            await call()
        assert "not-the-token" not in str(info.value) and info.value.state == "forbidden"


async def test_restricted_write_is_told_from_bad_token(miner: XMRigDouble) -> None:
    miner.set_http(restricted=True)
    client = client_for(miner)
    assert (await client.summary())["restricted"] is True
    for call in (client.pause, client.resume, client.stop, client.start):
        with pytest.raises(MinerRestricted):
            await call()


async def test_malformed_backends_of_old_xmrig_is_not_ready() -> None:
    async with XMRigDouble(worker_id="rig1", token=TOKEN, version="6.21.0") as old:
        old.set_hashrate(None, None, None)
        old.backends_malformed = True
        client = client_for(old)
        with pytest.raises(MinerNotReady, match="not ready yet"):
            await client.backends()
        assert (await client.summary())["worker_id"] == "rig1"  # the other endpoints keep working


async def test_xmrig_6_26_writes_nan_as_null(miner: XMRigDouble) -> None:
    with pytest.raises(ValueError, match=r"6\.26\.0"):
        miner.backends_malformed = True
    miner.set_hashrate(None, None, None)
    assert (await client_for(miner).backends())[0]["hashrate"] == [None, None, None]


async def test_down_and_hanging_miners() -> None:
    down = XMRigClient(MinerEndpoint("gone", f"127.0.0.1:{free_port()}", TOKEN))
    with pytest.raises(MinerUnavailable, match="unreachable"):
        await down.summary()
    async with XMRigDouble(token=TOKEN) as double:
        double.hang = True
        with pytest.raises(MinerUnavailable, match="in time"):
            await client_for(double, timeout=0.3).summary()


async def test_unknown_route_is_bad_response(miner: XMRigDouble) -> None:
    with pytest.raises(MinerBadResponse, match="404"):
        await client_for(miner)._call("GET", "/2/nothing")


@pytest.mark.parametrize("kind", ["json", "html"])
async def test_a_server_that_is_not_xmrig_is_recognised(kind: str) -> None:
    async with impostor(kind) as url:
        client = XMRigClient(MinerEndpoint("impostor", url, TOKEN))
        for call in (client.summary, client.pause, client.config, client.backends):
            with pytest.raises(NotXMRig) as info:
                await call()
            assert info.value.state == "not_xmrig"


def test_normalize_url() -> None:
    assert normalize_url("127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_url("127.0.0.1:8080", tls=True) == "https://127.0.0.1:8080"
    assert normalize_url("http://rig.local:8080/ignored", tls=True) == "https://rig.local:8080"
    with pytest.raises(ValueError):
        normalize_url("ftp://rig:21")
    assert "tok" not in repr(MinerEndpoint("a", "127.0.0.1:1", "tok"))


def self_signed_context(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    pytest.importorskip("cryptography")  # Debian's python3-cryptography, present with python3-electrum
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xmrig-double")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def test_tls_with_and_without_certificate_verification(tmp_path: Path) -> None:
    async with XMRigDouble(token=TOKEN, ssl_context=self_signed_context(tmp_path)) as double:
        address = double.url.removeprefix("https://")
        unverified = XMRigClient(MinerEndpoint("tls", address, TOKEN, tls=True, verify_tls=False))
        assert unverified.base_url.startswith("https://")
        assert (await unverified.summary())["version"]
        verified = XMRigClient(MinerEndpoint("tls", address, TOKEN, tls=True))
        with pytest.raises(MinerUnavailable, match="TLS failed"):
            await verified.summary()
