"""The daemon's few routes, found by a table lookup instead of aiohttp's ``Application`` and URL router.

A daemon serves five fixed paths. aiohttp's ``Application`` resolves each request through its router
(``UrlDispatcher.resolve``, a ``UrlMappingMatchInfo`` built, frozen and attached to a ``web.Request``
copy of the request) before the handler runs: about a tenth of what a cheap JSON-RPC call costs in all
(``bench/dispatch.py --instructions``). Served by aiohttp's low-level ``web.Server`` instead, a request
reaches ``Routes.dispatch``, which finds its handler in a dict by exact path and method.

What the router also did is kept here: a ``GET`` route answers ``HEAD`` (aiohttp sends no body then),
and any other path or method is answered with a JSON-RPC error (404, or 405 with ``Allow``), by a
handler that is guarded like the others (daemons/access.py), so browsers and foreign hosts are refused
on unknown paths too. Every handler must carry the guard's mark: ``add`` refuses one that does not.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .access import GUARDED, Handler
from .http_errors import error_response


class Routes:
    """Path -> method -> handler, each handler wrapped in ``wrap`` (the request guard)."""

    def __init__(self, wrap: Callable[[Handler], Handler]) -> None:
        self.wrap = wrap
        self.table: dict[str, dict[str, Handler]] = {}
        self.fallback = self.checked(wrap(self.not_routed))

    def add(self, method: str, path: str, handler: Handler) -> None:
        methods = self.table.setdefault(path, {})
        guarded = self.checked(self.wrap(handler))
        methods[method] = guarded
        if method == "GET":
            methods.setdefault("HEAD", guarded)

    def checked(self, handler: Handler) -> Handler:
        """Refuse a handler that skips the guard: it would serve web pages and hold connections that the
        caps count as idle."""
        if not getattr(handler, GUARDED, False):
            raise RuntimeError(f"route handler without the request guard: {handler!r}")
        return handler

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        methods = self.table.get(request.path)
        handler = methods.get(request.method) if methods is not None else None
        return await (handler or self.fallback)(request)

    def allowed(self, path: str) -> list[str] | None:
        methods = self.table.get(path)
        return sorted(methods) if methods is not None else None

    async def not_routed(self, request: web.BaseRequest) -> web.Response:
        listed = self.allowed(request.path)
        if listed is None:
            return error_response(404, f"Not found: {request.path!r} (JSON-RPC is served by POST /)")
        allow = ", ".join(listed)
        return error_response(405, f"Method {request.method} not allowed here: use {allow}", {"Allow": allow})
