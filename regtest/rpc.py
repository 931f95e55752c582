"""HTTP transport speaking bitcoind's JSON-RPC dialect: Basic auth, batches, legacy and 2.0 envelopes.

Copies what clients of bitcoind rely on: 401 with an empty body and a WWW-Authenticate header for bad
credentials; the reply's Content-Type exactly "application/json" (ElectrumX refuses anything else); legacy
(no "jsonrpc" key) replies carry both "result" and "error" and use HTTP 500 (404 for an unknown method) for a
failed single request, JSON-RPC 2.0 requests get 2.0 replies with HTTP 200; batches always answer 200.
Amounts are written as exact JSON numbers with 8 decimals, as Core prints them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from decimal import Decimal
from typing import Any

from aiohttp import web

from .errors import RPC_INTERNAL_ERROR, RPC_INVALID_REQUEST, RPC_METHOD_NOT_FOUND, RPC_PARSE_ERROR, RPCError
from .methods import NodeMethods

log = logging.getLogger(__name__)

_DECIMAL_MARK = re.compile(r'"\\u0000dec:(-?[0-9.]+)"')


def dumps(obj: Any) -> bytes:
    """JSON with Decimals as bare numbers (json cannot write them natively)."""

    def default(o: Any) -> str:
        if isinstance(o, Decimal):
            return f"\0dec:{o:f}"
        raise TypeError(f"not JSON serializable: {type(o).__name__}")

    return _DECIMAL_MARK.sub(r"\1", json.dumps(obj, default=default)).encode()


def check_auth(header: str | None, user: str, password: str) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{user}:{password}".encode())


class RPCServer:
    def __init__(self, methods: NodeMethods, user: str, password: str) -> None:
        self.methods = methods
        self.user, self.password = user, password

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self.handle)
        app.router.add_post("/wallet/{name}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if not check_auth(request.headers.get("Authorization"), self.user, self.password):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        try:
            payload = json.loads(await request.read(), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return self._reply(
                500, {"result": None, "error": {"code": RPC_PARSE_ERROR, "message": "Parse error"}, "id": None}
            )
        if isinstance(payload, list):
            replies = [r for r in (self.execute(item)[1] for item in payload) if r is not None]
            return self._reply(200, replies)
        status, reply = self.execute(payload)
        return self._reply(status, reply) if reply is not None else web.Response(status=204)

    def execute(self, req: Any) -> tuple[int, dict | None]:
        """One request -> (HTTP status for a single call, reply or None for a 2.0 notification)."""
        if not isinstance(req, dict):
            return 400, _legacy(None, None, RPCError(RPC_INVALID_REQUEST, "Invalid Request object"))
        v2 = req.get("jsonrpc") == "2.0"
        rid = req.get("id")
        try:
            if not isinstance(req.get("method"), str):
                raise RPCError(RPC_INVALID_REQUEST, "Method must be a string")
            params = req.get("params")
            if params is not None and not isinstance(params, list | dict):
                raise RPCError(RPC_INVALID_REQUEST, "Params must be an array or object")
            log.debug("rpc %s", req["method"])
            result, error = self.methods.call(req["method"], params), None
        except RPCError as e:
            result, error = None, e
        except Exception:  # a bug in the node: answer like Core would rather than dropping the connection
            log.exception("RPC %s failed", req.get("method"))
            result, error = None, RPCError(RPC_INTERNAL_ERROR, "Internal error")
        if v2:
            if "id" not in req:
                return 200, None
            body = {"jsonrpc": "2.0", "id": rid}
            body.update({"error": error.to_json()} if error else {"result": result})
            return 200, body
        status = 200 if error is None else (404 if error.code == RPC_METHOD_NOT_FOUND else 500)
        return status, _legacy(rid, result, error)

    @staticmethod
    def _reply(status: int, body: Any) -> web.Response:
        return web.Response(status=status, body=dumps(body) + b"\n", headers={"Content-Type": "application/json"})


def _legacy(rid: Any, result: Any, error: RPCError | None) -> dict:
    return {"result": result, "error": error.to_json() if error else None, "id": rid}
