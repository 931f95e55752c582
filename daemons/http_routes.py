"""The daemon's few routes, and what every request goes through on its way to one of them.

A daemon serves five fixed paths. aiohttp's ``Application`` resolves each request through its router
(``UrlDispatcher.resolve``, a ``UrlMappingMatchInfo`` built, frozen and attached to a ``web.Request``
copy of the request) before the handler runs: about a tenth of what a cheap JSON-RPC call costs in all
(``bench/dispatch.py --instructions``). Served by aiohttp's low-level ``web.Server`` instead
(daemons/http_server.py), a request reaches ``Routes.dispatch``, which finds its handler in a dict by
exact path and method, and does in one place what every request needs, whatever its route:

- while it runs, its connection counts as inside a request, so no cap closes it for room
  (daemons/connections.py);
- a browser origin not allowed, or a foreign Host on loopback, is refused (403, JSON-RPC -32600) before
  the handler and its authentication (daemons/access.py);
- the answer is counted for ``/metrics`` (status and time per path).

What the router also did is kept: a ``GET`` route answers ``HEAD`` (aiohttp sends no body then), and
any other path or method is answered with a JSON-RPC error (404, or 405 with ``Allow``), through the
same checks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .access import refusal
from .connections import ConnectionGuard
from .http_errors import error_response

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
ObserveHTTP = Callable[[str, int, float], None]


class Routes:
    """Path -> method -> handler, and the dispatch every request goes through (see the module doc)."""

    def __init__(
        self,
        guard: ConnectionGuard,
        observe_http: ObserveHTTP,
        allowed_origins: frozenset[str],
        check_host: bool,
        origins_setting: str,
    ) -> None:
        self.guard = guard
        self.observe_http = observe_http
        self.allowed_origins, self.check_host, self.origins_setting = allowed_origins, check_host, origins_setting
        self.table: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        methods = self.table.setdefault(path, {})
        methods[method] = handler
        if method == "GET":
            methods.setdefault("HEAD", handler)

    def allowed(self, path: str) -> list[str] | None:
        methods = self.table.get(path)
        return sorted(methods) if methods is not None else None

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        methods = self.table.get(path)
        handler = methods.get(request.method) if methods is not None else None
        started = time.perf_counter()
        protocol = request.protocol
        guard = self.guard
        guard.request_started(protocol)
        try:
            reason = refusal(request, self.allowed_origins, self.check_host, self.origins_setting)
            if reason is not None:
                response = error_response(403, reason)
            else:
                response = await (handler or self.not_routed)(request)
        except web.HTTPException as exc:  # aiohttp sends it as the answer
            self.observe_http(path, exc.status, time.perf_counter() - started)
            raise
        finally:
            guard.request_finished(protocol)
        # Any other exception becomes aiohttp's 500 answer, counted by the connection's handle_error.
        self.observe_http(path, response.status, time.perf_counter() - started)
        return response

    async def not_routed(self, request: web.BaseRequest) -> web.Response:
        listed = self.allowed(request.path)
        if listed is None:
            return error_response(404, f"Not found: {request.path!r} (JSON-RPC is served by POST /)")
        allow = ", ".join(listed)
        return error_response(405, f"Method {request.method} not allowed here: use {allow}", {"Allow": allow})
