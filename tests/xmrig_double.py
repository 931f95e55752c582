"""A double of XMRig 6's HTTP API, for tests only (XMRig is in no registry here).

It copies the behaviour of XMRig 6.x's HTTP API as read from its sources (Httpd, HttpApiRequest,
HttpApiResponse, Api, Base, Miner, Network/NetworkState, CpuBackend), re-implemented here:

* Routes: GET /1/summary, /2/summary, /api.json; GET /2/backends; GET and PUT/POST /1/config, /2/config;
  POST /json_rpc with the methods pause, resume and stop (there is no start method). Anything else is 404.
* Request gate, in XMRig's order: OPTIONS -> empty 200; methods other than DELETE/GET/HEAD/POST/PUT -> 405;
  Bearer auth (no Authorization header -> 401 when auth is required, i.e. the API is unrestricted or has a
  token; a header while the miner has no token -> 401; a wrong or malformed Bearer token -> 403); then every
  non-GET request -> 403 in restricted mode and 415 unless Content-Type is exactly ``application/json``.
  GET /2/config is also 403 in restricted mode.
* Errors are pretty-printed JSON objects ``{"status": <code>, "error": <reason>}``; every API response carries
  the CORS headers XMRig sets and ``Connection: close``.
* JSON-RPC answers are always HTTP 200: ``{"result": {"status": "OK"}, "jsonrpc": "2.0", "id": ...}`` or
  errors -32700 / -32600 / -32601 with XMRig's messages.
* A config write replaces the whole config (missing keys take XMRig's defaults: ``http`` absent means the
  API is disabled and restricted), needs at least one enabled pool with a url (else 400), answers 204 with no
  body, and rebuilds the miner: a stopped miner mines again (what the seed's client relies on for "start").
* ``stop`` stops the backends: hashrates become null and backends lose their threads; ``pause`` only sets
  ``paused`` (the slow decay of a real paused miner's hashrate is not modelled).
* ``backends_malformed``: the known XMRig bug where /2/backends answers malformed JSON for the first minutes.

Test controls (plain attributes and methods): ``set_hashrate``, ``add_share``, ``backends_malformed``,
``hang`` (answer nothing until the client gives up), ``restricted`` and ``token`` (via ``set_http``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import ssl
import time
from http import HTTPStatus
from typing import Any

from aiohttp import web

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, PUT, POST, DELETE",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}
ALLOWED_METHODS = {"DELETE", "GET", "HEAD", "POST", "PUT"}
VERSION = "6.26.0"


def free_port() -> int:
    """A free loopback TCP port (for a double started, stopped and restarted on the same address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_config(worker_id: str, port: int, token: str | None, restricted: bool, pool: str) -> dict[str, Any]:
    """A config shaped like the one XMRig 6 serves on GET /2/config (trimmed to its main sections)."""
    return {
        "api": {"id": None, "worker-id": worker_id},
        "http": {"enabled": True, "host": "127.0.0.1", "port": port, "access-token": token, "restricted": restricted},
        "autosave": True,
        "background": False,
        "colors": True,
        "title": True,
        "randomx": {"init": -1, "mode": "auto", "1gb-pages": False, "numa": True},
        "cpu": {"enabled": True, "huge-pages": True, "hw-aes": None, "priority": None, "max-threads-hint": 100},
        "opencl": {"enabled": False, "cache": True, "loader": None, "platform": "AMD"},
        "cuda": {"enabled": False, "loader": None},
        "log-file": None,
        "donate-level": 1,
        "donate-over-proxy": 1,
        "pools": [
            {
                "algo": None,
                "coin": None,
                "url": pool,
                "user": "4ADDRESS",
                "pass": "x",
                "rig-id": None,
                "nicehash": False,
                "keepalive": False,
                "enabled": True,
                "tls": False,
                "daemon": False,
            }
        ],
        "print-time": 60,
        "health-print-time": 60,
        "dmi": True,
        "syslog": False,
        "user-agent": None,
        "verbose": 0,
        "watch": True,
        "pause-on-battery": False,
        "pause-on-active": False,
    }


def active_pool(config: dict[str, Any]) -> str | None:
    """The url of the first enabled pool, as XMRig's Pools::active() counts them; None when there is none."""
    pools = config.get("pools")
    if not isinstance(pools, list):
        return None
    for pool in pools:
        if isinstance(pool, dict) and pool.get("enabled", True) and isinstance(pool.get("url"), str) and pool["url"]:
            return pool["url"]
    return None


class XMRigDouble:
    """One fake XMRig 6 miner with its HTTP API on a loopback port."""

    def __init__(
        self,
        worker_id: str = "rig",
        token: str | None = "secret-token",
        restricted: bool = False,
        pool: str = "pool.example.org:3333",
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port or free_port()
        self.ssl_context = ssl_context  # XMRig built with TLS serves its API over https
        self.config = default_config(worker_id, self.port, token, restricted, pool)
        self.paused = False
        self.running = True
        self.hashrate: list[float | None] = [1000.0, 990.5, 980.25]
        self.shares_good = 0
        self.shares_total = 0
        self.backends_malformed = False
        self.hang = False
        self.started_at = time.time()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._unhang = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> XMRigDouble:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True, ssl_context=self.ssl_context)
        await self._site.start()
        return self

    async def stop(self) -> None:
        """Take the miner down: its port refuses connections afterwards."""
        self._unhang.set()
        if self._runner is not None:
            await self._runner.cleanup()
        self._unhang = asyncio.Event()
        self._runner = self._site = None

    async def __aenter__(self) -> XMRigDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- test controls
    @property
    def token(self) -> str | None:
        return self.config["http"].get("access-token")

    @property
    def restricted(self) -> bool:
        return bool(self.config["http"].get("restricted", True))

    def set_http(self, **fields: Any) -> None:
        """Change the miner's own ``http`` settings (e.g. ``restricted=True``, ``**{"access-token": "x"}``)."""
        self.config["http"].update(fields)

    def set_hashrate(self, h10: float | None, h60: float | None, h15: float | None) -> None:
        self.hashrate = [h10, h60, h15]

    def add_share(self, accepted: bool = True) -> None:
        self.shares_total += 1
        self.shares_good += int(accepted)

    @property
    def pool(self) -> str | None:
        return active_pool(self.config)

    # ---------------------------------------------------------------- HTTP gate (Httpd::onHttpData)
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.headers)))
        if self.hang:
            await self._unhang.wait()  # hold the request until the client gives up or the double stops
            return self._reply(503)
        if request.method == "OPTIONS":
            return self._reply(200)
        if request.method == "GET" and request.path == "/favicon.ico":
            return _closing(web.Response(status=404))
        if request.method not in ALLOWED_METHODS:
            return self._reply(405)
        status = self._auth(request)
        if status != 200:
            return self._reply(status)
        if request.method != "GET":
            if self.restricted:
                return self._reply(403)
            if request.headers.get("Content-Type") != "application/json":
                return self._reply(415)
        body = await request.text()
        return await self._route(request.method, request.path, body)

    def _auth(self, request: web.Request) -> int:
        header = request.headers.get("Authorization")
        token = self.token
        if header is None:
            auth_required = not self.restricted or token is not None
            return 401 if auth_required else 200
        if token is None:
            return 401
        if len(header) < 8 or len(token) != len(header) - 7 or not header.startswith("Bearer "):
            return 403
        return 200 if header[7:] == token else 403

    # ---------------------------------------------------------------- routing (Api::exec and its listeners)
    async def _route(self, method: str, path: str, body: str) -> web.StreamResponse:
        if method == "POST" and path == "/json_rpc":
            return self._json_rpc(body)
        if method == "GET" and path in ("/1/summary", "/2/summary", "/api.json"):
            return self._reply(200, self._summary(2 if path.startswith("/2/") else 1))
        if method == "GET" and path == "/2/backends":
            return self._backends()
        if path in ("/1/config", "/2/config"):
            if method == "GET":
                return self._reply(403) if self.restricted else self._reply(200, copy.deepcopy(self.config))
            if method in ("PUT", "POST"):
                return await self._write_config(body)
        return self._reply(404)

    def _json_rpc(self, body: str) -> web.Response:
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            return self._rpc_reply(None, error=(-32700, "Parse error"))
        rpc_id = doc.get("id") if isinstance(doc, dict) else None
        method = doc.get("method") if isinstance(doc, dict) else None
        if not isinstance(method, str) or not method:
            return self._rpc_reply(rpc_id, error=(-32600, "Invalid Request"))
        if method == "pause":
            self.paused = True
        elif method == "resume":
            self.paused = False
        elif method == "stop":
            self.running = False
        else:
            return self._rpc_reply(rpc_id, error=(-32601, "Method not found"))
        return self._rpc_reply(rpc_id, result={"status": "OK"})

    async def _write_config(self, body: str) -> web.Response:
        try:
            new = json.loads(body)
        except ValueError:
            return self._reply(400, {"error": "Invalid value."})
        if not isinstance(new, dict) or not new or active_pool(new) is None:
            return self._reply(400)
        http = {"enabled": False, "host": "127.0.0.1", "port": 0, "access-token": None, "restricted": True}
        if isinstance(new.get("http"), dict):
            http.update(new["http"])
        new["http"] = http
        self.config = new
        self.running = True  # Miner::onConfigChanged rebuilds the backends
        if not http["enabled"]:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.stop()))
        return self._reply(204)

    # ---------------------------------------------------------------- bodies
    def _totals(self) -> list[float | None]:
        return list(self.hashrate) if self.running else [None, None, None]

    def _summary(self, version: int) -> dict[str, Any]:
        hashrate: dict[str, Any] = {
            "total": self._totals(),
            "highest": max((h for h in self.hashrate if h), default=None),
        }
        results: dict[str, Any] = {
            "diff_current": 120001,
            "shares_good": self.shares_good,
            "shares_total": self.shares_total,
            "avg_time": 30,
            "avg_time_ms": 30000,
            "hashes_total": 123456789,
            "best": [0] * 10,
        }
        connection: dict[str, Any] = {
            "pool": self.pool,
            "ip": "127.0.0.1",
            "uptime": int(time.time() - self.started_at),
            "uptime_ms": int((time.time() - self.started_at) * 1000),
            "ping": 12,
            "failures": 0,
            "tls": None,
            "tls-fingerprint": None,
            "algo": "rx/0",
            "diff": 120001,
            "accepted": self.shares_good,
            "rejected": self.shares_total - self.shares_good,
            "avg_time": 30,
            "avg_time_ms": 30000,
            "hashes_total": 123456789,
        }
        if version == 1:
            hashrate["threads"] = [self._totals()]
            results["error_log"] = []
            connection["error_log"] = []
        return {
            "id": "0123456789abcdef",
            "worker_id": self.config.get("api", {}).get("worker-id"),
            "uptime": int(time.time() - self.started_at),
            "restricted": self.restricted,
            "resources": {
                "memory": {"free": 1 << 30, "total": 1 << 32, "resident_set_memory": 1 << 28},
                "load_average": [0.5, 0.4, 0.3],
                "hardware_concurrency": 2,
            },
            "features": ["api", "asm", "http", "hwloc", "tls"],
            "version": VERSION,
            "kind": "miner",
            "ua": f"XMRig/{VERSION} (Linux x86_64) libuv/1.48.0 gcc/12.2.0",
            "cpu": {"brand": "Double CPU", "aes": True, "avx2": True, "64_bit": True, "cores": 2, "threads": 2},
            "donate_level": self.config.get("donate-level", 1),
            "paused": self.paused,
            "algorithms": ["cn/0", "rx/0", "rx/wow", "argon2/chukwa"],
            "hashrate": hashrate,
            "hugepages": [1168, 1168] if version > 1 else True,
            "results": results,
            "algo": "rx/0",
            "connection": connection,
        }

    def _backends(self) -> web.Response:
        cpu: dict[str, Any] = {
            "type": "cpu",
            "enabled": True,
            "algo": "rx/0",
            "profile": "rx",
            "hw-aes": True,
            "priority": -1,
            "msr": True,
            "asm": "intel",
            "argon2-impl": "AVX2",
            "hugepages": [1168, 1168],
            "memory": 2097152,
        }
        if self.running:
            cpu["hashrate"] = self._totals()
            cpu["threads"] = [{"intensity": 1, "affinity": 0, "av": 1, "hashrate": self._totals()}]
        body = [cpu, {"type": "opencl", "enabled": False}, {"type": "cuda", "enabled": False}]
        text = json.dumps(body, indent=4)
        if self.backends_malformed:
            # XMRig's bug: a hashrate it cannot compute yet is printed as a bare -nan, which is not JSON.
            text = text.replace('"hashrate": [', '"hashrate": [-nan, ', 1)
        return self._raw(200, text)

    # ---------------------------------------------------------------- responses (HttpApiResponse::end)
    def _reply(self, status: int, doc: Any = None) -> web.Response:
        doc = {} if doc is None else doc
        if status >= 400:
            doc.setdefault("status", status)
            doc.setdefault("error", _reason(status))
        if isinstance(doc, dict) and not doc:
            return _closing(web.Response(status=status, headers=CORS_HEADERS))
        return self._raw(status, json.dumps(doc, indent=4))

    def _rpc_reply(self, rpc_id: Any, result: Any = None, error: tuple[int, str] | None = None) -> web.Response:
        doc: dict[str, Any] = {"error": {"code": error[0], "message": error[1]}} if error else {"result": result}
        doc["jsonrpc"] = "2.0"
        doc["id"] = rpc_id
        return self._raw(200, json.dumps(doc, indent=4))

    @staticmethod
    def _raw(status: int, text: str) -> web.Response:
        headers = {**CORS_HEADERS, "Content-Type": "application/json"}
        return _closing(web.Response(status=status, body=text.encode(), headers=headers))


def _closing(response: web.Response) -> web.Response:
    """XMRig answers every request with ``Connection: close``."""
    response.force_close()
    return response


def _reason(status: int) -> str:
    return HTTPStatus(status).phrase
