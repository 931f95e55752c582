"""GET /metrics: Prometheus exposition of requests, latencies, websockets, events, wallets and backends."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemons.xmrig import XMRigDaemon
from tests.sample_daemon import SampleDaemon
from tests.support import NO_ENV_FILE, DaemonClient, running_daemon
from tests.xmrig_double import XMRigDouble

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(d: DaemonClient, auth: bool = True) -> Samples:
    headers = d.headers if auth else {}
    async with d.session.get(d.url + "/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def calls(samples: Samples, method: str, code: str) -> float:
    return value(samples, "coin_daemon_rpc_calls_total", method=method, code=code) or 0.0


@pytest.fixture
async def daemon():
    async with running_daemon(SampleDaemon) as client:
        yield client


async def test_metrics_need_the_daemons_credentials_by_default(daemon):
    async with daemon.session.get(daemon.url + "/metrics") as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == -32600
    bad = {"Authorization": aiohttp.BasicAuth("electrum", "wrong").encode()}
    async with daemon.session.get(daemon.url + "/metrics", headers=bad) as response:
        assert response.status == 401


async def test_metrics_auth_can_be_turned_off():
    async with running_daemon(SampleDaemon, env={"METRICS_AUTH": "false"}) as d:
        samples = await scrape(d, auth=False)
        assert value(samples, "coin_daemon_info", daemon="sample", version=SampleDaemon.VERSION) == 1
        # Only /metrics is open: the RPC still wants credentials.
        async with d.session.post(d.url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "help"}) as response:
            assert response.status == 401


async def test_a_bad_metrics_auth_value_stops_start_up():
    from daemons.settings import SettingsError

    with pytest.raises(SettingsError, match="SAMPLE_METRICS_AUTH"):
        SampleDaemon(environ={"SAMPLE_METRICS_AUTH": "maybe"}, env_file=NO_ENV_FILE)


async def test_rpc_calls_are_counted_by_method_and_outcome(daemon):
    before = await scrape(daemon)
    assert calls(before, "add_numbers", "ok") == 0
    assert await daemon.call("add_numbers", 2, 3) == 5
    assert await daemon.call("add_numbers", 1) == 1
    await daemon.raw({"jsonrpc": "2.0", "id": 1, "method": "add_numbers", "params": ["x", "y", "z"]})  # -32602
    await daemon.raw({"jsonrpc": "2.0", "id": 2, "method": "no_such_method_1"})  # -32601
    await daemon.raw({"jsonrpc": "2.0", "id": 3, "method": "no_such_method_2"})
    await daemon.raw([{"jsonrpc": "2.0", "method": "add_numbers", "params": [1, 1]}, 5])  # notification + junk
    after = await scrape(daemon)
    assert calls(after, "add_numbers", "ok") == 3  # the notification counts as a call too
    assert calls(after, "add_numbers", "-32602") == 1
    # Invented names share one label: a client cannot grow the exposition.
    assert calls(after, "unknown", "-32601") == 2
    assert not any("no_such_method" in str(labels) for _, labels in after)
    assert calls(after, "invalid", "-32600") == 1
    count = value(after, "coin_daemon_rpc_call_duration_seconds_count", method="add_numbers")
    assert count == 4
    assert value(after, "coin_daemon_rpc_call_duration_seconds_bucket", method="add_numbers", le="+Inf") == 4
    assert value(after, "coin_daemon_rpc_call_duration_seconds_sum", method="add_numbers") > 0


async def test_http_requests_are_counted_by_known_path_and_status(daemon):
    await daemon.call("help")
    async with daemon.session.get(daemon.url + "/spec") as response:
        assert response.status == 401
    async with daemon.session.get(daemon.url + "/made-up/path") as response:
        assert response.status == 404
    async with daemon.session.get(daemon.url + "/health") as response:
        assert response.status == 200
    samples = await scrape(daemon)
    assert value(samples, "coin_daemon_http_requests_total", path="/", status="200") == 1
    assert value(samples, "coin_daemon_http_requests_total", path="/spec", status="401") == 1
    assert value(samples, "coin_daemon_http_requests_total", path="other", status="404") == 1
    assert value(samples, "coin_daemon_http_requests_total", path="/health", status="200") == 1
    assert value(samples, "coin_daemon_http_request_duration_seconds_count", path="/") == 1
    assert not any("made-up" in str(labels) for _, labels in samples)


async def test_state_gauges_follow_events_wallets_and_websockets(daemon):
    before = await scrape(daemon)
    assert value(before, "coin_daemon_events_stored") == 0
    assert value(before, "coin_daemon_events_newest_id") == 0
    assert value(before, "coin_daemon_wallets_loaded") == 0
    assert value(before, "coin_daemon_websocket_clients") == 0
    assert value(before, "coin_daemon_backend_status", status="ok") == 1
    assert value(before, "coin_daemon_backend_status", status="syncing") == 0
    async with daemon.ws_connect() as ws:
        await ws.send_json({"xpub": "wallet-a"})
        await daemon.call("deposit", "1.5", xpub="wallet-a")
        await daemon.call("deposit", "2", xpub="wallet-b")
        await ws.receive_json(timeout=30)
        during = await scrape(daemon)
    assert value(during, "coin_daemon_websocket_clients") == 1
    assert value(during, "coin_daemon_events_stored") == 2
    assert value(during, "coin_daemon_events_newest_id") == 2
    assert value(during, "coin_daemon_wallets_loaded") == 2
    assert value(during, "coin_daemon_websocket_queued_events") is not None


async def test_backend_status_and_heights_come_from_health(daemon):
    async def behind() -> dict[str, Any]:
        return {"status": "syncing", "local_height": 7, "server_height": 12}

    daemon.daemon.health = behind
    samples = await scrape(daemon)
    assert value(samples, "coin_daemon_backend_status", status="syncing") == 1
    assert value(samples, "coin_daemon_backend_status", status="ok") == 0
    assert value(samples, "coin_daemon_backend_height", kind="local_height") == 7
    assert value(samples, "coin_daemon_backend_height", kind="server_height") == 12

    async def broken() -> dict[str, Any]:
        raise ConnectionError("backend gone")

    daemon.daemon.health = broken
    samples = await scrape(daemon)  # a failing health check is a figure, not a failed scrape
    assert value(samples, "coin_daemon_backend_status", status="backend_unavailable") == 1

    async def busy() -> dict[str, Any]:  # the Bitmessage daemon's answer while the node works through a call
        return {"status": "busy"}

    daemon.daemon.health = busy
    samples = await scrape(daemon)
    assert value(samples, "coin_daemon_backend_status", status="busy") == 1
    assert value(samples, "coin_daemon_backend_status", status="ok") == 0

    assert value(samples, "coin_daemon_storage_available") == 1
    daemon.daemon.storage.problem = lambda: "No space left on device"  # /health: storage_unavailable
    samples = await scrape(daemon)
    assert value(samples, "coin_daemon_storage_available") == 0
    assert value(samples, "coin_daemon_backend_status", status="busy") == 1  # the backend's own state stays


async def test_xmrig_miners_are_counted_by_state():
    async with XMRigDouble("rig1", "token-one") as rig:
        env = {"POLL_INTERVAL": "0.1", "TIMEOUT": "2"}
        async with running_daemon(XMRigDaemon, env=env) as d:
            assert value(await scrape(d), "coin_daemon_xmrig_miners", state="online") == 0
            await d.call("add_miner", "rig1", rig.url, rig.token)
            online = await eventually(d, "coin_daemon_xmrig_miners", "online", 1)
            assert value(online, "coin_daemon_xmrig_miners", state="offline") == 0
            await rig.stop()
            offline = await eventually(d, "coin_daemon_xmrig_miners", "offline", 1)
            assert value(offline, "coin_daemon_xmrig_miners", state="online") == 0


async def eventually(d: DaemonClient, name: str, state: str, expected: float, limit: float = 30.0) -> Samples:
    """Scrape until the gauge shows ``expected`` (a guard against hanging, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        samples = await scrape(d)
        if value(samples, name, state=state) == expected:
            return samples
        if loop.time() > deadline:
            raise AssertionError(f"{name}{{state={state}}} never reached {expected}")
        await asyncio.sleep(0.1)


async def test_requests_aiohttp_cannot_parse_are_counted_too(daemon):
    """They never reach a route or middleware: aiohttp's access-log hook still sees their 400."""
    host, port = daemon.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    await writer.drain()
    assert (await reader.read(100)).startswith(b"HTTP/1.0 400")
    writer.close()
    samples = await scrape(daemon)
    assert value(samples, "coin_daemon_http_requests_total", path="/", status="400") == 1
