"""A double of XMRig 6.26.0's HTTP API, for tests only (XMRig is in no registry here).

Each behaviour names the XMRig 6.26.0 source it copies; bodies and the wire format were checked against a
real 6.26.0 built from its source (CPU only: -DWITH_OPENCL=OFF -DWITH_CUDA=OFF). The bytes on the wire come
from tests/xmrig_double_http.py.

* Routes (src/base/api/requests/HttpApiRequest.cpp, src/base/api/Api.cpp ``exec``): GET /1/summary,
  /2/summary, /api.json; GET /2/backends; GET and PUT/POST /1/config, /2/config; POST /json_rpc with pause,
  resume and stop (there is no start). Anything else: 404 ``{"status": 404, "error": "NOT_FOUND"}``.
* Request gate (src/base/api/Httpd.cpp ``onHttpData``/``auth``), in this order: OPTIONS -> empty 200;
  GET /favicon.ico -> bare 404; methods other than DELETE/GET/HEAD/POST/PUT -> 405; no Authorization header
  -> 401 when auth is required (API unrestricted or with a token); a header while the miner has no token ->
  401; a wrong or malformed Bearer token -> 403; then every non-GET -> 403 in restricted mode and 415 unless
  Content-Type is exactly ``application/json``. GET /2/config is 403 in restricted mode (src/base/kernel/Base.cpp).
* /json_rpc always answers HTTP 200 and writes its answer twice on the connection (HttpApiRequest ``done``
  after ``rpcDone``): ``{"result": {"status": "OK"}, "jsonrpc": "2.0", "id": ...}`` or -32700 / -32600 /
  -32601 with XMRig's messages.
* A config write (Base::reload) replaces the whole config: a body that is not a non-empty object, or a config
  without an enabled pool, is 400 ``BAD_REQUEST``; unparsable JSON is 400 with rapidjson's message first. It
  answers 204 and, for a miner started without a config file, the config is live at once; a miner started
  with ``-c file`` and ``watch`` on only saves the file, and its file watcher (src/base/io/Watcher.cpp,
  kDelay = 500 ms) loads it later. A changed ``http`` section restarts the HTTP server on its new port with
  its new token (Httpd::onConfigChanged); when that happens at once, the server's destructor closes the
  writing connection before its 204 (src/base/net/http/HttpServer.cpp), so that write gets no answer.
  A changed ``pools`` list reconnects (Network::onConfigChanged).
* Pool connection (src/base/net/stratum/NetworkState.cpp): ``connection.pool`` is ``""`` until the first
  login and keeps the last pool after the pool is lost, while ``ip`` turns null, ``uptime``/``uptime_ms`` 0
  and ``failures`` counts up; ``paused`` does not change.
* Hashrates (src/core/Miner.cpp getHashrate, src/backend/common/Hashrate.cpp): ``[10 s, 60 s, 15 min]``, null
  only while a window fills (a fresh or restarted backend), 0.0 when nothing is hashed (stopped, no pool:
  the double skips the minute a real window takes to decay to 0.0).
* ``stop`` stops the backends: totals become 0.0 and /2/backends loses ``hashrate`` and ``threads``
  (src/backend/cpu/CpuBackend.cpp ``toJSON``); a config write rebuilds them, with windows filling again.
* /2/backends lists only the backends built in: ``cpu`` alone in this CPU build.
* ``backends_malformed``: XMRig before 6.22.2 could print a not-yet-computed hashrate as ``-nan`` (fixed by
  #3569 in 6.22.2; 6.23.0 asserts rapidjson writes NaN as null). Only a double of such a version may use it.

``impostor`` serves what a miner's URL may point at instead: a JSON-to-everything server or an HTML page.

Test controls: ``set_hashrate``, ``add_share``, ``set_pool_online``, ``hang``, ``set_http``,
``abort_on_http_restart`` (the miner dies instead of restarting its HTTP server, as a real 6.26.0
without a config file did in 6 of 13 http changes made through the daemon),
``backends_malformed`` (old versions only), ``config_file`` (started with ``-c``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tests.xmrig_double_http import Request, WireServer, api_response, http_response

VERSION = "6.26.0"
WATCH_DELAY = 0.5  # src/base/io/Watcher.h kDelay
FIXED_NAN_VERSION = (6, 22, 2)
ALLOWED_METHODS = {"DELETE", "GET", "HEAD", "POST", "PUT"}


CPU = {  # summary's cpu section of the real 6.26.0 this double was compared with (src/backend/cpu/Cpu.cpp)
    "brand": "Intel(R) Xeon(R) Processor",
    "family": 6,
    "model": 207,
    "stepping": 2,
    "proc_info": 788210,
    "aes": True,
    "avx2": True,
    "x64": True,
    "64_bit": True,
    "l2": 4194304,
    "l3": 314572800,
    "cores": 2,
    "threads": 2,
    "packages": 1,
    "nodes": 1,
    "backend": "hwloc/2.9.0",
    "msr": "intel",
    "assembly": "intel",
    "arch": "x86_64",
    "flags": ["aes", "vaes", "avx", "avx2", "avx512f", "bmi2", "osxsave", "sse2", "ssse3", "sse4.1", "popcnt"],
}


def free_port() -> int:
    """A free loopback TCP port (for a double started, stopped and restarted on the same address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_config(worker_id: str, port: int, token: str | None, restricted: bool, pool: str) -> dict[str, Any]:
    """GET /2/config of a real 6.26.0 CPU-only build (no cuda, opencl or health-print-time sections)."""
    return {
        "api": {"id": None, "worker-id": worker_id},
        "http": {"enabled": True, "host": "127.0.0.1", "port": port, "access-token": token, "restricted": restricted},
        "autosave": True,
        "background": False,
        "colors": True,
        "title": True,
        "randomx": {
            "init": -1,
            "init-avx2": -1,
            "mode": "auto",
            "1gb-pages": False,
            "rdmsr": True,
            "wrmsr": True,
            "cache_qos": False,
            "numa": True,
            "scratchpad_prefetch_mode": 1,
        },
        "cpu": {
            "enabled": True,
            "huge-pages": True,
            "huge-pages-jit": False,
            "hw-aes": None,
            "priority": None,
            "memory-pool": False,
            "yield": True,
            "asm": True,
            "argon2-impl": None,
            "*": {"intensity": 1, "threads": 1, "affinity": -1},
            "kawpow": False,
        },
        "log-file": None,
        "donate-level": 1,
        "donate-over-proxy": 1,
        "pools": [
            {
                "algo": "rx/0",
                "coin": None,
                "url": pool,
                "user": "4ADDRESS",
                "pass": "x",
                "rig-id": None,
                "nicehash": False,
                "keepalive": False,
                "enabled": True,
                "tls": False,
                "sni": False,
                "tls-fingerprint": None,
                "daemon": False,
                "socks5": None,
                "self-select": None,
                "submit-to-origin": False,
            }
        ],
        "retries": 5,
        "retry-pause": 5,
        "print-time": 60,
        "dmi": True,
        "syslog": False,
        "tls": {
            "enabled": False,
            "protocols": None,
            "cert": None,
            "cert_key": None,
            "ciphers": None,
            "ciphersuites": None,
            "dhparam": None,
        },
        "dns": {"ip_version": 0, "ttl": 30},
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


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class XMRigDouble:
    """One fake XMRig miner with its HTTP API on a loopback port."""

    def __init__(
        self,
        worker_id: str = "rig",
        token: str | None = "secret-token",
        restricted: bool = False,
        pool: str = "pool.example.org:3333",
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        version: str = VERSION,
        config_file: bool = False,
        pool_online: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.ssl_context = ssl_context  # XMRig built with TLS serves its API over https
        self.version = version
        self.config = default_config(worker_id, self.port, token, restricted, pool)
        self.config_file = config_file  # started with -c: writes go through the file watcher
        self.watcher = config_file and self.config["watch"]  # Base::start creates it only then
        self.paused = False
        self.running = True
        self.hashrate: list[float | None] = [1000.0, 990.5, 980.25]
        self.shares_good = 0
        self.shares_total = 0
        self._backends_malformed = False
        self.hang = False
        self.started_at = time.time()
        self.pool_online = pool_online
        self.connected_pool = ""  # NetworkState::m_pool: "" until the first login
        self.pool_since: float | None = None  # NetworkState::m_connectionTime while m_active
        self.failures = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._unhang = asyncio.Event()
        self._server: WireServer | None = None
        self._restart: asyncio.Future[None] | None = None
        # Real 6.26.0 without a config file died (SIGABRT) in 6 of 13 http changes made through the daemon.
        self.abort_on_http_restart = False
        self._login()

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> XMRigDouble:
        self._server = WireServer(self._handle, self.port, self.ssl_context)
        await self._server.start()
        return self

    async def stop(self) -> None:
        """Take the miner down: its port refuses connections afterwards."""
        self._unhang.set()
        if self._server is not None:
            await self._server.stop()
        self._unhang = asyncio.Event()
        self._server = None

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
    def backends_malformed(self) -> bool:
        return self._backends_malformed

    @backends_malformed.setter
    def backends_malformed(self, value: bool) -> None:
        if value and version_tuple(self.version) >= FIXED_NAN_VERSION:
            raise ValueError(f"XMRig {self.version} writes NaN as null; only a double of XMRig < 6.22.2 may")
        self._backends_malformed = value

    def set_pool_online(self, online: bool) -> None:
        """The pool accepts logins or is gone; the miner follows at once (XMRig retries every retry-pause)."""
        self.pool_online = online
        if online:
            self._login()
        elif self.pool_since is not None:
            self.pool_since = None  # NetworkState::stop: m_active false, ip null, failures + 1
            self.failures += 1

    @property
    def pool(self) -> str | None:
        return active_pool(self.config)

    def _login(self) -> None:
        if self.pool_online and self.pool is not None:
            self.connected_pool = self.pool
            self.pool_since = time.time()

    # ---------------------------------------------------------------- HTTP gate (Httpd::onHttpData)
    async def _handle(self, request: Request) -> list[bytes]:
        self.requests.append((request.method, request.path, request.headers))
        if self.hang:
            await self._unhang.wait()  # hold the request until the client gives up or the double stops
            return [api_response(503)]
        if request.method == "OPTIONS":
            return [api_response(200)]
        if request.method == "GET" and request.path == "/favicon.ico":
            return [http_response(404, api=False)]
        if request.method not in ALLOWED_METHODS:
            return [api_response(405)]
        status = self._auth(request.headers.get("authorization"))
        if status != 200:
            return [api_response(status)]
        if request.method != "GET":
            if self.restricted:
                return [api_response(403)]
            if request.headers.get("content-type") != "application/json":
                return [api_response(415)]
        return self._route(request)

    def _auth(self, header: str | None) -> int:
        token = self.token
        if header is None:
            return 401 if (not self.restricted or token is not None) else 200
        if token is None:
            return 401
        if len(header) < 8 or len(token) != len(header) - 7 or not header.startswith("Bearer "):
            return 403
        return 200 if header[7:] == token else 403

    # ---------------------------------------------------------------- routing (Api::exec and its listeners)
    def _route(self, request: Request) -> list[bytes]:
        method, path = request.method, request.path
        if method == "POST" and path == "/json_rpc":
            answer = self._json_rpc(request.body)
            return [answer, answer]  # HttpApiRequest: rpcDone ends the response, done ends it again
        if method == "GET" and path in ("/1/summary", "/2/summary", "/api.json"):
            return [api_response(200, self._summary(2 if path.startswith("/2/") else 1))]
        if method == "GET" and path == "/2/backends":
            return [api_response(200, self._backends(), nan_as="-nan" if self._backends_malformed else "null")]
        if path in ("/1/config", "/2/config"):
            if method == "GET":
                return [api_response(403) if self.restricted else api_response(200, copy.deepcopy(self.config))]
            if method in ("PUT", "POST"):
                return self._write_config(request.body)
        return [api_response(404)]

    def _json_rpc(self, body: str) -> bytes:
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            return _rpc_answer(None, error=(-32700, "Parse error"))
        rpc_id = doc.get("id") if isinstance(doc, dict) else None
        method = doc.get("method") if isinstance(doc, dict) else None
        if not isinstance(method, str) or not method:
            return _rpc_answer(rpc_id, error=(-32600, "Invalid Request"))
        if method == "pause":
            self.paused = True
        elif method == "resume":
            self.paused = False
        elif method == "stop":
            self.running = False
        else:
            return _rpc_answer(rpc_id, error=(-32601, "Method not found"))
        return _rpc_answer(rpc_id, result={"status": "OK"})

    def _write_config(self, body: str) -> list[bytes]:
        try:
            new = json.loads(body)
        except ValueError:
            return [api_response(400, {"error": "Invalid value."})]  # rapidjson's parse error comes first
        if not isinstance(new, dict) or not new or active_pool(new) is None:
            return [api_response(400)]
        http = {"enabled": False, "host": "127.0.0.1", "port": 0, "access-token": None, "restricted": True}
        if isinstance(new.get("http"), dict):
            http.update(new["http"])
        new["http"] = http
        if self.watcher and new.get("watch", True):
            asyncio.get_running_loop().call_later(WATCH_DELAY, self._apply, new)  # saved; the watcher loads it
            return [api_response(204)]
        http_changed = new["http"] != self.config["http"]
        self._apply(new)
        # Live at once: a new http section deletes the HTTP server, whose destructor (HttpServer.cpp,
        # HttpContext::closeAll) closes this connection before the 204 is written.
        return [] if http_changed else [api_response(204)]

    def _apply(self, new: dict[str, Any]) -> None:
        """Base's config replaced: listeners react to what changed (Httpd, Network, Miner::onConfigChanged)."""
        old, self.config = self.config, new
        if not self.running:
            self.running = True  # the backends are rebuilt; their windows fill again
            self.hashrate = [None, None, None]
        if active_pool(new) != active_pool(old):  # the old strategy stops, the new one logs in if it can
            pool_online = self.pool_online
            self.set_pool_online(False)
            self.set_pool_online(pool_online)
        if new["http"] != old["http"]:
            self._restart = asyncio.ensure_future(self._restart_http(new["http"]))

    async def _restart_http(self, http: dict[str, Any]) -> None:
        await self.stop()
        if not http.get("enabled") or self.abort_on_http_restart:
            return
        if isinstance(http.get("port"), int) and http["port"] > 0:
            self.port = http["port"]
        await self.start()

    # ---------------------------------------------------------------- bodies
    def _totals(self) -> list[float | None]:
        if not self.running or self.pool_since is None:
            return [0.0, 0.0, 0.0]
        return list(self.hashrate)

    def _summary(self, version: int) -> dict[str, Any]:
        uptime_ms = int((time.time() - self.pool_since) * 1000) if self.pool_since is not None else 0
        totals = self._totals()
        known = [h for h in [*self.hashrate, *totals] if h]
        hashrate: dict[str, Any] = {"total": totals, "highest": max(known, default=None)}
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
            "pool": self.connected_pool,
            "ip": "127.0.0.1" if self.pool_since is not None else None,
            "uptime": uptime_ms // 1000,
            "uptime_ms": uptime_ms,
            "ping": 0,
            "failures": self.failures,
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
            hashrate["threads"] = [totals]
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
            "results": results,
            "algo": "rx/0",
            "connection": connection,
            "version": self.version,
            "kind": "miner",
            "ua": f"XMRig/{self.version} (Linux x86_64) libuv/1.44.2 gcc/12.2.0",
            "cpu": CPU,
            "donate_level": self.config.get("donate-level", 1),
            "paused": self.paused,
            "algorithms": ["cn/0", "rx/0", "rx/2", "rx/wow", "argon2/chukwa", "ghostrider"],
            "hashrate": hashrate,
            "hugepages": [0, 129] if version > 1 else True,
        }

    def _backends(self) -> list[dict[str, Any]]:
        cpu: dict[str, Any] = {
            "type": "cpu",
            "enabled": True,
            "algo": "rx/0",
            "profile": "*",
            "hw-aes": True,
            "priority": -1,
            "msr": False,
            "asm": "intel",
            "argon2-impl": "AVX-512F",
            "hugepages": [0, 129],
            "memory": 2097152,
        }
        if self.running:
            rates = [float("nan") if h is None and self._backends_malformed else h for h in self._totals()]
            cpu["hashrate"] = rates
            cpu["threads"] = [{"intensity": 1, "affinity": -1, "av": 1, "hashrate": rates}]
        return [cpu]


def _rpc_answer(rpc_id: Any, result: Any = None, error: tuple[int, str] | None = None) -> bytes:
    doc: dict[str, Any] = {"error": {"code": error[0], "message": error[1]}} if error else {"result": result}
    doc["jsonrpc"] = "2.0"
    doc["id"] = rpc_id
    return api_response(200, doc)


@contextlib.asynccontextmanager
async def impostor(kind: str) -> AsyncIterator[str]:
    """A server at a miner's URL that is not XMRig: ``json`` answers 200 with a JSON object to every path
    and method, ``html`` serves a web page (a router's login, say). Yields its URL."""

    async def any_json(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "status": "running", "result": {"status": "OK"}})

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>router login</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_json if kind == "json" else html)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
