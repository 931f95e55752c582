"""The HTTP side of a daemon: its routes, the runner it serves them with, and their handlers.

``BaseDaemon`` inherits it. The handlers only authenticate, read and bound what comes in (bodies,
batches: ``daemons/http_rpc.py``) and encode what goes out; answering a call is the daemon's
``handle_single``, and what ``/health`` says is its ``health`` hook, filtered here to what may be
shown without auth. Connections are capped and timed by ``daemons/connections.py``; browser
origins and foreign Host names are refused by ``daemons/access.py``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import jsonrpc
from .access import check_basic_auth, public_health, refusal_of
from .connections import AcceptErrorLog, ConnectionGuard, connection_cap, raise_descriptor_limit
from .datapath import prepare_data_path
from .http_errors import QuietParseErrors
from .http_fast import FastRPC
from .http_routes import Routes
from .http_rpc import BodyTimeout, answer_batch, encode_answer, read_body
from .http_server import DaemonRunner
from .jsonrpc import INVALID_REQUEST, RPCError
from .settings import CommonSettings, Settings, is_loopback

logger = logging.getLogger("daemons.base")  # the name operators know these lines by
UNAUTHORIZED_BODY = {"jsonrpc": "2.0", "error": {"code": INVALID_REQUEST, "message": "Unauthorized"}, "id": None}


class HTTPEndpoints:
    """``POST /``, ``GET /ws``, ``GET /spec``, ``GET /health`` and ``GET /metrics``, served by ``run``."""

    # What the daemon provides (see BaseDaemon).
    name: str
    VERSION: str
    settings: CommonSettings
    env_reader: Settings
    guard: ConnectionGuard
    accept_errors: AcceptErrorLog
    metrics: Any
    storage: Any
    hub: Any
    _routes: Routes | None
    ensure_backend_loaded: Callable[[], None]
    health: Callable[[], Awaitable[dict[str, Any]]]
    full_spec: Callable[[], dict[str, Any]]
    handle_single: Callable[[Any], Awaitable[dict[str, Any] | None]]
    on_startup: Callable[[], Awaitable[None]]
    on_shutdown: Callable[[], Awaitable[None]]
    on_cleanup: Callable[[], Awaitable[None]]

    @property
    def routes(self) -> Routes:
        if self._routes is None:
            self._routes = self.create_routes()
        return self._routes

    def create_routes(self) -> Routes:
        settings = self.settings
        origins_setting = self.env_reader.variable("ALLOWED_ORIGINS")
        check_host = is_loopback(settings.host)
        routes = Routes(self.guard, self.metrics.observe_http, settings.allowed_origins, check_host, origins_setting)
        routes.add("POST", "/", self.handle_rpc)
        routes.add("GET", "/ws", self.handle_ws)
        routes.add("GET", "/spec", self.handle_spec)
        routes.add("GET", "/health", self.handle_health)
        routes.add("GET", "/metrics", self.metrics.handle)
        return routes

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then shut down gracefully (websockets are closed with 1001)."""
        logging.basicConfig(
            level=logging.DEBUG if self.settings.debug else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("aiohttp.server").addFilter(QuietParseErrors())
        os.umask(0o077)  # whatever the daemon and its libraries create (wallets, logs, databases) is owner-only
        prepare_data_path(self.settings.data_path, self.env_reader.variable("DATA_PATH"))  # before any library writes
        raise_descriptor_limit()
        self.ensure_backend_loaded()
        asyncio.run(self.serve())

    def make_runner(self, access_log: logging.Logger | None = None, **kwargs: Any) -> DaemonRunner:
        """The runner ``run`` serves with, which tests use too: it answers even unparsable requests in JSON,
        caps and times connections (the cap in all fits the descriptor limit in force now), and counts every
        answer for /metrics (writing aiohttp's access log only when ``access_log`` is given)."""
        self.guard.max_connections = connection_cap(self.settings.max_connections)
        return DaemonRunner(
            self.routes.dispatch,
            guard=self.guard,
            observe_http=self.metrics.observe_http,
            client_max_size=self.settings.max_body_size + 1024,  # our own limit answers in JSON: a backstop
            on_startup=self.on_startup,
            on_shutdown=self.on_shutdown,
            on_cleanup=self.on_cleanup,
            fast_rpc=self.fast_rpc(kwargs.get("keepalive_timeout", 3630.0)),  # aiohttp's default
            access_log=access_log,
            **kwargs,
        )

    def fast_rpc(self, keepalive_timeout: float) -> FastRPC:
        """What the connections' fast path for ``POST /`` needs of the daemon (daemons/http_fast.py)."""
        settings = self.settings
        origins_setting = self.env_reader.variable("ALLOWED_ORIGINS")
        check_host = is_loopback(settings.host)
        allowed = settings.allowed_origins

        def refusal(origin: str | None, host: str | None) -> str | None:
            return refusal_of(origin, host, allowed, check_host, origins_setting)

        return FastRPC(
            self.answer_rpc,
            self.authorized_header,
            refusal,
            self.metrics.observe_http,
            settings.max_body_size,
            settings.body_timeout,
            keepalive_timeout,
        )

    async def serve(self) -> None:
        # aiohttp's access log costs more than dispatching a call: one line per request only when debugging.
        access_log = logging.getLogger("aiohttp.access") if self.settings.debug else None
        runner = self.make_runner(access_log=access_log, keepalive_timeout=75.0, shutdown_timeout=60.0)
        self.accept_errors.install(asyncio.get_running_loop())
        await runner.setup()
        try:
            await web.TCPSite(runner, self.settings.host, self.settings.port).start()
            logger.info("%s daemon listening on %s:%s", self.name, self.settings.host, self.settings.port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    # -- HTTP handlers ------------------------------------------------------------------------

    def authorized(self, request: web.BaseRequest) -> bool:
        return self.authorized_header(request.headers.get("Authorization"))

    def authorized_header(self, header: str | None) -> bool:
        # Fast path: the canonical header, compared whole in constant time; any other form is parsed.
        if header is not None and hmac.compare_digest(header.encode("utf-8", "replace"), self.expected_auth):
            return True
        return check_basic_auth(header, self.settings.login, self.settings.password)

    @functools.cached_property
    def expected_auth(self) -> bytes:
        credentials = f"{self.settings.login}:{self.settings.password}".encode()
        return b"Basic " + base64.b64encode(credentials)

    def unauthorized(self) -> web.Response:
        return web.json_response(UNAUTHORIZED_BODY, status=401, headers={"WWW-Authenticate": 'Basic realm="daemon"'})

    async def handle_health(self, request: web.BaseRequest) -> web.Response:
        try:
            body = await self.health()
        except Exception:
            logger.exception("health check failed")
            body = {"status": "backend_unavailable"}
        problem = self.storage.problem()
        if problem is not None:  # events cannot be stored, so none can be delivered: worse than any backend state
            body = {**body, "status": "storage_unavailable", "storage": problem}
        body = {"name": self.name, "version": self.VERSION, **public_health(body)}
        return web.json_response(body, status=200 if body.get("status") == "ok" else 503, dumps=jsonrpc.dumps)

    async def handle_spec(self, request: web.BaseRequest) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        return web.json_response(self.full_spec(), dumps=jsonrpc.dumps)

    async def handle_ws(self, request: web.BaseRequest) -> web.StreamResponse:
        if not self.authorized(request):
            return self.unauthorized()
        assert self.hub is not None
        return await self.hub.handle(request)

    async def handle_rpc(self, request: web.BaseRequest) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        settings = self.settings
        try:
            body = await read_body(request, settings.max_body_size, settings.body_timeout)
        except RPCError as error:
            status = 408 if isinstance(error, BodyTimeout) else 413 if error.code == INVALID_REQUEST else 200
            response = web.json_response(jsonrpc.error_response(None, error), status=status)
            if status == 408:
                response.force_close()  # the rest of the body may still come: the stream cannot be reused
            return response
        status, text = await self.answer_rpc(body)
        if text is None:
            return web.Response(status=204)
        return web.Response(status=status, text=text, content_type="application/json")

    async def answer_rpc(self, body: bytes) -> tuple[int, str | None]:
        """The answer to a ``POST /`` body, whatever server read it: (HTTP status, JSON text; None for 204)."""
        try:
            payload = jsonrpc.decode_body(body)
        except RPCError as error:  # worded as web.json_response words it (json.dumps' default separators)
            return 200, json.dumps(jsonrpc.error_response(None, error))
        settings = self.settings
        if isinstance(payload, list):
            text = await answer_batch(
                payload, self.handle_single, settings.max_batch_length, settings.max_batch_response_size
            )
        else:
            answer = await self.handle_single(payload)
            text = None if answer is None else encode_answer(answer)
        return (204, None) if text is None else (200, text)
