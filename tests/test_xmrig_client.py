"""The XMRig API client against the double of XMRig 6's HTTP API (tests/xmrig_double.py)."""

from __future__ import annotations

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
    MinerNotReady,
    MinerRestricted,
    MinerUnauthorized,
    MinerUnavailable,
    XMRigClient,
    normalize_url,
)
from tests.xmrig_double import XMRigDouble, free_port

TOKEN = "secret-token"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def miner() -> AsyncIterator[XMRigDouble]:
    async with XMRigDouble(worker_id="rig1", token=TOKEN) as double:
        yield double


def client_for(double: XMRigDouble, session: aiohttp.ClientSession, token: str | None = TOKEN, **kw) -> XMRigClient:
    return XMRigClient(MinerEndpoint("rig1", double.url, token), session, **kw)


# ---------------------------------------------------------------- the double itself keeps XMRig's wire behaviour
async def test_double_speaks_like_xmrig(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(miner.url + "/2/summary") as r:
        assert r.status == 401
        assert await r.json() == {"status": 401, "error": "Unauthorized"}
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["Connection"] == "close"
    async with session.get(miner.url + "/2/summary", headers={"Authorization": "Bearer wrong-token!"}) as r:
        assert r.status == 403
    async with session.get(miner.url + "/1/summary", headers=auth) as r:
        v1 = await r.json()
        assert "threads" in v1["hashrate"] and v1["hugepages"] is True
    async with session.post(miner.url + "/json_rpc", data=b"{}", headers={**auth, "Content-Type": "text/plain"}) as r:
        assert r.status == 415
    body = json.dumps({"method": "nope", "id": 7}).encode()
    async with session.post(
        miner.url + "/json_rpc", data=body, headers={**auth, "Content-Type": "application/json"}
    ) as r:
        assert r.status == 200
        assert await r.json() == {"error": {"code": -32601, "message": "Method not found"}, "jsonrpc": "2.0", "id": 7}
    async with session.get(miner.url + "/3/nothing", headers=auth) as r:
        assert r.status == 404
    async with session.options(miner.url + "/2/summary") as r:
        assert r.status == 200 and await r.read() == b""
    async with session.patch(miner.url + "/2/config", headers=auth) as r:
        assert r.status == 405


# ---------------------------------------------------------------- reads
async def test_summary_backends_config(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    client = client_for(miner, session)
    summary = await client.summary()
    assert summary["worker_id"] == "rig1"
    assert summary["hashrate"]["total"] == miner.hashrate
    assert summary["connection"]["pool"] == miner.pool
    backends = await client.backends()
    assert [b["type"] for b in backends] == ["cpu", "opencl", "cuda"]
    config = await client.config()
    assert config["pools"][0]["url"] == miner.pool
    # the token travels as Bearer auth
    assert miner.requests[-1][2]["Authorization"] == f"Bearer {TOKEN}"


async def test_restricted_miner_without_token_is_readable(session: aiohttp.ClientSession) -> None:
    async with XMRigDouble(token=None, restricted=True) as double:
        client = client_for(double, session, token=None)
        assert (await client.summary())["restricted"] is True
        with pytest.raises(MinerRestricted):
            await client.config()
        with pytest.raises(MinerRestricted):
            await client.pause()


# ---------------------------------------------------------------- writes
async def test_pause_resume_stop_start(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    client = client_for(miner, session)
    assert await client.pause() == {"status": "OK"}
    assert (await client.summary())["paused"] is True
    await client.resume()
    assert (await client.summary())["paused"] is False
    await client.stop()
    assert (await client.summary())["hashrate"]["total"] == [None, None, None]
    await client.start()
    assert (await client.summary())["hashrate"]["total"] == miner.hashrate


async def test_put_config_replaces_and_validates(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    client = client_for(miner, session)
    config = await client.config()
    config["pools"][0]["url"] = "other.pool:4444"
    await client.put_config(config)
    assert (await client.summary())["connection"]["pool"] == "other.pool:4444"
    with pytest.raises(ConfigRejected):
        await client.put_config({"pools": []})


# ---------------------------------------------------------------- failures
async def test_auth_failures(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    with pytest.raises(MinerUnauthorized, match="requires an access token"):
        await client_for(miner, session, token=None).summary()
    bad = client_for(miner, session, token="not-the-token")
    for call in (bad.summary, bad.config, bad.pause):
        with pytest.raises(MinerUnauthorized, match="rejected the access token") as info:
            await call()
        assert "not-the-token" not in str(info.value)


async def test_restricted_write_is_told_from_bad_token(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    miner.set_http(restricted=True)
    client = client_for(miner, session)
    assert (await client.summary())["restricted"] is True
    for call in (client.pause, client.resume, client.stop, client.start):
        with pytest.raises(MinerRestricted):
            await call()


async def test_malformed_backends_is_not_ready(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    miner.backends_malformed = True
    client = client_for(miner, session)
    with pytest.raises(MinerNotReady, match="not ready yet"):
        await client.backends()
    assert (await client.summary())["worker_id"] == "rig1"  # the other endpoints keep working


async def test_down_and_hanging_miners(session: aiohttp.ClientSession) -> None:
    down = XMRigClient(MinerEndpoint("gone", f"127.0.0.1:{free_port()}", TOKEN), session)
    with pytest.raises(MinerUnavailable, match="unreachable"):
        await down.summary()
    async with XMRigDouble(token=TOKEN) as double:
        double.hang = True
        with pytest.raises(MinerUnavailable, match="in time"):
            await client_for(double, session, timeout=0.3).summary()


async def test_unknown_route_is_bad_response(miner: XMRigDouble, session: aiohttp.ClientSession) -> None:
    with pytest.raises(MinerBadResponse, match="404"):
        await client_for(miner, session)._call("GET", "/2/nothing")


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


async def test_tls_with_and_without_certificate_verification(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with XMRigDouble(token=TOKEN, ssl_context=self_signed_context(tmp_path)) as double:
        address = double.url.removeprefix("https://")
        unverified = XMRigClient(MinerEndpoint("tls", address, TOKEN, tls=True, verify_tls=False), session)
        assert unverified.base_url.startswith("https://")
        assert (await unverified.summary())["version"]
        verified = XMRigClient(MinerEndpoint("tls", address, TOKEN, tls=True), session)
        with pytest.raises(MinerUnavailable, match="TLS failed"):
            await verified.summary()
