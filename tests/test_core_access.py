"""Web pages cannot reach a daemon, and /health shows no backend URL (issue 12, items 12 and 14).

Served by the real SampleDaemon; the browser's requests are sent with the headers a browser sets
(``Origin``, and the rebound name as ``Host``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon

REBOUND = {"Host": "attacker.example:5000", "Origin": "http://attacker.example:5000"}
HELP = {"jsonrpc": "2.0", "id": 1, "method": "help"}


async def post(d: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with d.session.post(d.url + "/", json=HELP, headers={**d.headers, **headers}) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize(
    "headers",
    [REBOUND, {"Origin": "http://attacker.example"}, {"Origin": "null"}, {"Host": "attacker.example"}],
    ids=["rebound", "origin", "null-origin", "host"],
)
async def test_browser_requests_and_rebound_names_are_refused(headers: dict[str, str]) -> None:
    async with running_daemon(SampleDaemon) as d:
        status, body = await post(d, headers)
        assert status == 403 and body["error"]["code"] == -32600 and body["id"] is None
        for path in ("/ws", "/spec", "/health", "/metrics", "/no-such-path"):  # every route, the fallback too
            async with d.session.get(d.url + path, headers={**d.headers, **headers}) as response:
                assert response.status == 403, path
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await d.session.ws_connect(d.url + "/ws", headers={**d.headers, **headers})


async def test_listed_origins_and_loopback_names_pass() -> None:
    env = {"ALLOWED_ORIGINS": "https://shop.example.com"}
    async with running_daemon(SampleDaemon, env=env) as d:
        port = d.url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.2", "shop.localhost"):
            assert (await post(d, {"Host": host}))[0] == 200, host
        assert (await post(d, {"Origin": "https://shop.example.com"}))[0] == 200
        assert (await post(d, {"Origin": "https://shop.example.com.attacker.example"}))[0] == 403
        async with d.session.ws_connect(d.url + "/ws", headers={**d.headers, "Origin": "https://shop.example.com"}):
            pass


async def test_off_loopback_any_host_name_is_served() -> None:
    env = {"HOST": "0.0.0.0", "LOGIN": "shop", "PASSWORD": "a-password-of-16+"}
    async with running_daemon(SampleDaemon, env=env) as d:
        d.auth = aiohttp.BasicAuth("shop", "a-password-of-16+")
        assert (await post(d, {"Host": "daemon.internal:5999"}))[0] == 200  # a reverse proxy's or docker's name
        assert (await post(d, {"Origin": "http://attacker.example"}))[0] == 403  # Origin still checked


class BackendDaemon(SampleDaemon):
    async def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "node": {"url": "http://user:s3cret@127.0.0.1:8442/", "variant": "json", "connections": 8},
            "monerod_url": "http://127.0.0.1:18081",
            "server": "127.0.0.1:50001:t",
            "error": "cannot reach http://user:s3cret@127.0.0.1:8442/",
            "peers": ["https://a.example", 3],
        }


async def test_health_shows_status_and_plain_facts_never_a_backend_url() -> None:
    async with running_daemon(BackendDaemon) as d:
        async with d.session.get(d.url + "/health") as response:
            text = await response.text()
            body = await response.json()
        assert response.status == 200
        assert "s3cret" not in text and "://" not in text and "127.0.0.1" not in text, text
        assert body == {
            "name": "SAMPLE",
            "version": d.daemon.VERSION,
            "status": "ok",
            "node": {"variant": "json", "connections": 8},
            "peers": [3],
        }


async def test_every_route_and_method_and_the_fallback_refuse_web_pages() -> None:
    """The checks run in the dispatch every request goes through: each route and method in the daemon's table
    (a route added later included), a method a path does not serve and a path no route serves."""
    async with running_daemon(SampleDaemon) as d:
        served = [(method, path) for path, methods in d.daemon.routes.table.items() for method in methods]
        assert len(served) == 9  # POST /, and GET and HEAD of /ws, /spec, /health, /metrics
        for method, path in [*served, ("PUT", "/"), ("POST", "/health"), ("GET", "/no-such-path")]:
            async with d.session.request(method, d.url + path, headers={**d.headers, **REBOUND}) as response:
                assert response.status == 403, (method, path)
            async with d.session.request(method, d.url + path, headers=d.headers) as response:
                assert response.status != 403, (method, path)
