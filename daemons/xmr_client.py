"""Async JSON-RPC client of monero-wallet-rpc and monerod: protocol only, no daemon logic.

Both programs speak JSON-RPC 2.0 on ``/json_rpc``. monero-wallet-rpc started with ``--rpc-login`` wants
HTTP Digest authentication; aiohttp's own ``DigestAuthMiddleware`` answers the challenge, so no digest code
lives here. Every failure becomes one of the exceptions below, whose messages carry stable fragments
("wallet-rpc unreachable", "not enough money", ...) that spec/xmr.json maps to error codes, so the daemon
needs no translation table of its own. Messages never contain credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

DEFAULT_TIMEOUT = 60.0  # transfer and generate_from_keys are CPU-bound in wallet-rpc: seconds, not ms
CONNECT_TIMEOUT = 3.0
MAX_CONCURRENT = 8  # requests in flight per endpoint  # a backend that is down must fail fast


class MoneroError(Exception):
    """Base of every error talking to wallet-rpc or monerod."""


class MoneroUnavailable(MoneroError):
    """The program cannot be reached (refused, reset, timed out)."""


class MoneroUnauthorized(MoneroError):
    """HTTP 401 even after the digest exchange: missing or wrong ``--rpc-login`` credentials."""


class MoneroBadResponse(MoneroError):
    """An answer that is not JSON-RPC (an HTML page, a proxy's error, garbage)."""


class MoneroRPCError(MoneroError):
    """A JSON-RPC error object from the program, kept with its code and message."""

    def __init__(self, name: str, method: str, code: int, message: str) -> None:
        super().__init__(f"{name} error {code} in {method}: {message}")
        self.code = code
        self.message = message
        self.method = method


def health_word(exc: MoneroError, name: str) -> str:
    """What ``/health`` (no auth) says of a backend that failed: the kind of failure, never its URL."""
    if isinstance(exc, MoneroUnauthorized):
        return f"{name} rejected the credentials"
    if isinstance(exc, MoneroUnavailable):
        return f"{name} unreachable"
    return f"{name} gave a bad answer" if isinstance(exc, MoneroBadResponse) else f"{name} failed"


class MoneroRPC:
    """One endpoint (a wallet-rpc process or monerod), with its own keep-alive session.

    ``name`` ("wallet-rpc", "monerod") only labels error messages. The session is made lazily inside
    the running loop, as aiohttp requires.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "wallet-rpc",
        login: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.name = name
        self._login = login
        self._password = password
        self.timeout = timeout
        self._idle: list[aiohttp.ClientSession] = []
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self._closed = False
        self._ids = itertools.count(1)

    def __repr__(self) -> str:  # keeps the credentials out of logs
        return f"MoneroRPC(name={self.name!r}, url={self.url!r}, digest={self._login is not None})"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """A session for one request at a time.

        wallet-rpc's digest auth wants each nonce's count to arrive in order, and one middleware numbers
        the concurrent requests of its session in the order they are made, not sent: concurrent requests on
        one session get 401s. So each concurrent request borrows its own session (and middleware).
        """
        async with self._slots:
            session = self._idle.pop() if self._idle else self.new_session()
            try:
                yield session
            finally:
                if session.closed:
                    pass
                elif self._closed:
                    await session.close()
                else:
                    self._idle.append(session)

    def new_session(self) -> aiohttp.ClientSession:
        """A fresh session that authenticates like this client's own (used as is by bench/xmr_bench.py).

        The digest middleware is preemptive: once a session has seen the first 401 challenge it signs every
        later request with the cached nonce, so a reused session pays one HTTP round trip per call.
        """
        middlewares = ()
        if self._login is not None:
            middlewares = (aiohttp.DigestAuthMiddleware(self._login, self._password or ""),)
        return aiohttp.ClientSession(middlewares=middlewares)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for session in idle:
            await session.close()

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """Call ``method`` with named params; returns ``result`` or raises a MoneroError."""
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}
        status, text = await self._post("json_rpc", payload, timeout)
        body = self._json_object(text, f"a non-JSON-RPC answer (HTTP {status})")
        error = body.get("error")
        if isinstance(error, dict):
            raise MoneroRPCError(self.name, method, int(error.get("code", 0)), str(error.get("message", "")))
        if "result" not in body:
            raise MoneroBadResponse(f"{self.name} at {self.url} answered {method} without a result")
        return body["result"]

    async def raw(self, path: str, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """monerod's other endpoints (``/get_transactions``, ...): plain JSON in and out, with a ``status``."""
        status, text = await self._post(path.lstrip("/"), payload, timeout)
        return self._json_object(text, f"a non-JSON answer to {path} (HTTP {status})")

    async def _post(self, path: str, payload: dict[str, Any], timeout: float | None) -> tuple[int, str]:
        """POST ``payload`` as JSON; the status and text, or MoneroUnauthorized / MoneroUnavailable."""
        limits = aiohttp.ClientTimeout(total=timeout or self.timeout, sock_connect=CONNECT_TIMEOUT)
        try:
            async with (
                self.session() as session,
                session.post(f"{self.url}/{path}", json=payload, timeout=limits) as response,
            ):
                if response.status == 401:
                    raise MoneroUnauthorized(f"{self.name} at {self.url} rejected the credentials (HTTP 401)")
                return response.status, await response.text()
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
            detail = type(exc).__name__ if not str(exc) else str(exc)
            raise MoneroUnavailable(f"{self.name} unreachable at {self.url}: {detail}") from exc

    def _json_object(self, text: str, what: str) -> dict[str, Any]:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise MoneroBadResponse(f"{self.name} at {self.url} gave {what}")
        return body
