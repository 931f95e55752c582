"""The server a daemon listens with: aiohttp's low-level ``web.Server``, its connections and its runner.

Why not ``web.Application`` and ``web.AppRunner``: a daemon has five fixed routes, which
``daemons/http_routes.py`` finds by a dict lookup; the Application's router, match info and request
copy cost more per request than that (see ``bench/dispatch.py``). What the Application gave besides
is kept here: the start-up, shutdown and clean-up hooks run in the same order (``DaemonRunner``), and
request bodies keep a size cap as aiohttp's backstop (``client_max_size``).

Connections are ``JSONErrorRequestHandler`` (answers aiohttp gives on its own are JSON-RPC errors,
daemons/http_errors.py), capped and timed by the daemon's ``ConnectionGuard`` (daemons/connections.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from .connections import ConnectionGuard
from .http_errors import JSONErrorRequestHandler, raw_error_response
from .http_fast import FastConnection, FastRPC

# The answer to a connection that a cap refuses (see daemons.connections), written before its request.
REFUSED_RESPONSE = raw_error_response(503, "Service unavailable: too many open connections, try again later")
Hook = Callable[[], Awaitable[None]]
ObserveHTTP = Callable[[str, int, float], None]


class DaemonServer(web.Server):
    """The protocol factory a site listens with: ``JSONErrorRequestHandler`` connections, capped and timed by
    ``guard``, whose requests carry ``client_max_size``. aiohttp's access log is off unless given
    (``access_log``, the daemon's DEBUG): answers are counted for /metrics by ``Routes.dispatch`` and, for
    those aiohttp gives itself, by the connection's ``handle_error``."""

    def __init__(
        self, handler: Any, guard: ConnectionGuard, observe_http: ObserveHTTP, client_max_size: int, **kwargs: Any
    ) -> None:
        super().__init__(handler, request_factory=self.make_request, **kwargs)
        self.guard = guard
        self.observe_http = observe_http  # for the answers aiohttp gives itself (JSONErrorRequestHandler)
        self.client_max_size = client_max_size

    def make_request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: Any,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, self._loop, client_max_size=self.client_max_size
        )

    fast_rpc: FastRPC | None = None  # when set, connections start on the fast path for POST / (http_fast.py)

    def __call__(self) -> Any:
        if self.fast_rpc is not None:
            return FastConnection(self, self.fast_rpc, self.make_handler)
        return self.make_handler()

    def make_handler(self) -> RequestHandler:
        return JSONErrorRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: Any) -> None:
        super().connection_made(handler, transport)
        if not self.guard.connection_made(handler, transport):
            transport.write(REFUSED_RESPONSE)
            handler.force_close()  # the transport closes once the answer is written

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.guard.connection_lost(handler)


class DaemonRunner(web.BaseRunner):
    """Serves ``handler`` on a ``DaemonServer``; ``setup`` runs ``on_startup`` first. Once started, ``cleanup``
    runs ``on_shutdown`` (after the sites stop, before open connections are closed) and ``on_cleanup``
    (after), as aiohttp's AppRunner runs an Application's hooks. A start-up that failed runs neither."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        guard: ConnectionGuard,
        observe_http: ObserveHTTP,
        client_max_size: int,
        on_startup: Hook,
        on_shutdown: Hook,
        on_cleanup: Hook,
        fast_rpc: FastRPC | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fast_rpc = fast_rpc
        self.handler = handler
        self.guard = guard
        self.observe_http = observe_http
        self.client_max_size = client_max_size
        self.hooks = (on_startup, on_shutdown, on_cleanup)
        self.started = False

    async def _make_server(self) -> web.Server:
        await self.hooks[0]()
        self.started = True
        loop = asyncio.get_running_loop()
        kwargs = self._kwargs
        server = DaemonServer(self.handler, self.guard, self.observe_http, self.client_max_size, loop=loop, **kwargs)
        server.fast_rpc = self.fast_rpc
        return server

    async def shutdown(self) -> None:
        if self.started:
            await self.hooks[1]()

    async def _cleanup_server(self) -> None:
        if self.started:
            self.started = False
            await self.hooks[2]()
