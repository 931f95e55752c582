"""An asyncio client of a PyBitmessage node's API, in its three variants (and auto-detection).

The node serves one HTTP endpoint with Basic auth, speaking either XML-RPC (``apivariant = xml``,
the default), JSON-RPC (``json``) or XML-RPC with every structured result dumped to a JSON string
and errors returned as ``"API Error 00NN: ..."`` strings (``legacy``, pre-0.6.3). This module hides
the difference: whatever the variant, a call returns structured data with base64 text decoded, or
raises NodeAPIError(number, text) for the node's numbered errors. XML-RPC payloads are built and
parsed with the stdlib's ``dumps``/``loads`` and sent with aiohttp, so nothing blocks the loop.

The node's API serves one call at a time (one thread, SimpleXMLRPCServer.handle_request in a loop)
and answers nothing while it works: ``createDeterministicAddresses`` of 50 takes about 20 s. So
calls are queued here, one in flight at a time, and the timeout counts only from the moment a
call is sent: a poll queued behind a long call waits for it instead of timing out. A call that
gets no answer in time raises NodeTimeout (the node accepted it and may still be working: busy),
which is not NodeUnavailable (nothing listens: dead). The node sleeps 2 s before refusing bad
credentials (4 s without a header), blocking its API for everyone meanwhile; so after a refusal
the client sends nothing for a while, doubling that pause after each refusal up to a bound, and
forgets the refusals at the first answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import xmlrpc.client
from typing import Any

import aiohttp

from daemons import bitmessage_commands as bmc

VARIANTS = ("xml", "json", "legacy")
API_ERROR = re.compile(r"API Error (\d{4}): (.*)", re.DOTALL)
NONE_FAULT = "cannot marshal None"
CONNECT_TIMEOUT = 10.0  # to open a connection; the node's listen backlog accepts even while it works
AUTH_BACKOFF_FIRST = 2.0  # seconds without calls after a first refusal (the node's own pause)
AUTH_BACKOFF_MAX = 120.0


class BitmessageError(Exception):
    """Anything that went wrong talking to the node."""


class NodeUnavailable(BitmessageError):
    """The node cannot be reached (refused, reset, timed out)."""


class NodeTimeout(BitmessageError):
    """The node took the call but did not answer in time: it is busy (or stuck), not gone."""


class NodeAuthError(BitmessageError):
    """The node refused the API username or password (HTTP 401), now or in the backoff after it."""


class NodeProtocolError(BitmessageError):
    """The node answered something that is neither a result nor one of its numbered errors."""


class NodeAPIError(BitmessageError):
    """One of the node's numbered errors, 0000 to 0027 (APIError in PyBitmessage)."""

    def __init__(self, number: int, text: str) -> None:
        super().__init__(f"API Error {number:04d}: {text}")
        self.number = number
        self.text = text


def parse_api_error(text: Any) -> NodeAPIError | None:
    """The numbered error inside a legacy result string or a JSON-RPC error message, if any."""
    if not isinstance(text, str):
        return None
    match = API_ERROR.search(text)
    return NodeAPIError(int(match.group(1)), match.group(2)) if match else None


def auth_backoff(refusals: int, first: float = AUTH_BACKOFF_FIRST, most: float = AUTH_BACKOFF_MAX) -> float:
    """Seconds to send nothing after the n-th refusal in a row: first, 2 * first, 4 * first... at most `most`."""
    return min(most, first * 2 ** min(refusals - 1, 32))


class BitmessageClient:
    """Calls node commands by name (or alias) with positional or named arguments, one at a time.

    `url` holds no credentials (daemons.urls takes them out); they go as HTTP Basic auth.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        variant: str = "auto",
        timeout: float = 60.0,
        backoff: tuple[float, float] = (AUTH_BACKOFF_FIRST, AUTH_BACKOFF_MAX),
    ) -> None:
        if variant not in (*VARIANTS, "auto"):
            raise ValueError(f"API variant must be one of xml, json, legacy, auto (got {variant!r})")
        self.url = url
        self.configured_variant = variant
        self.variant: str | None = None if variant == "auto" else variant
        self.timeout = timeout
        self.backoff = backoff
        self._auth = aiohttp.BasicAuth(username, password)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(CONNECT_TIMEOUT, timeout), sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._detect_lock = asyncio.Lock()
        self._node_lock = asyncio.Lock()  # the node serves one call at a time: so do we
        self.in_flight: tuple[str, float] | None = None  # (method, monotonic start) of the call at the node
        self.unanswered: str | None = None  # a call that timed out: the node may still work on it
        self.refusals = 0
        self.refused_until = 0.0  # monotonic time before which nothing is sent after a refusal

    def __repr__(self) -> str:  # never show the password
        return f"BitmessageClient(url={self.url!r}, variant={self.variant or self.configured_variant!r})"

    def busy(self, longer_than: float = 0.0) -> str | None:
        """Why the node cannot answer soon, if so: a call of ours in flight for over `longer_than`
        seconds, or one it never answered."""
        if self.in_flight is not None:
            method, since = self.in_flight
            if time.monotonic() - since > longer_than:
                return f"working on {method} for {time.monotonic() - since:.0f} s"
        if self.unanswered is not None:
            return f"gave no answer to {self.unanswered} within {self.timeout:g} s"
        return None

    def refused_for(self) -> float:
        """Seconds left in the pause after a refusal of the credentials (0 when calls may go)."""
        return max(0.0, self.refused_until - time.monotonic()) if self.refusals else 0.0

    # --- transport -------------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # The node closes every connection after its answer, so never reuse one.
            self._session = aiohttp.ClientSession(
                auth=self._auth, timeout=self._timeout, connector=aiohttp.TCPConnector(force_close=True)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, method: str, body: bytes, content_type: str) -> str:
        """One call at the node, after the calls queued before it; the timeout starts when it is sent."""
        self.check_refusal()
        async with self._node_lock:
            self.check_refusal()  # a call queued before this one may just have been refused
            self.in_flight = (method, time.monotonic())
            try:
                status, text = await self._send(method, body, content_type)
            finally:
                self.in_flight = None
        self.unanswered = None  # any answer, even an error, means the node is free again
        if status == 401:
            self.refusals += 1
            pause = auth_backoff(self.refusals, *self.backoff)
            self.refused_until = time.monotonic() + pause
            raise NodeAuthError(f"Bitmessage node refused the API username or password (next try in {pause:g} s)")
        self.refusals = 0
        if status != 200:
            raise NodeProtocolError(f"Bitmessage node answered HTTP {status}")
        return text

    def check_refusal(self) -> None:
        left = self.refused_for()
        if left > 0:
            raise NodeAuthError(
                f"Bitmessage node refused the API username or password; not asking it again for {left:.0f} s"
            )

    async def _send(self, method: str, body: bytes, content_type: str) -> tuple[int, str]:
        try:
            async with self._get_session().post(self.url, data=body, headers={"Content-Type": content_type}) as resp:
                return resp.status, await resp.text(errors="replace")
        except aiohttp.SocketTimeoutError as exc:
            self.unanswered = method
            raise NodeTimeout(
                f"Bitmessage node took {method} but gave no answer within {self.timeout:g} s: it serves one call "
                "at a time and may still be working on it (BITMESSAGE_NODE_TIMEOUT)"
            ) from exc
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            if self.configured_variant == "auto":
                self.variant = None  # the node may come back with another apivariant
            raise NodeUnavailable(f"Bitmessage node is unreachable: {type(exc).__name__}") from exc

    # --- the two wire formats --------------------------------------------------------------------

    async def _xml_call(self, method: str, params: list[Any]) -> Any:
        body = xmlrpc.client.dumps(tuple(params), methodname=method, encoding="utf-8", allow_none=True)
        text = await self._post(method, body.encode("utf-8"), "text/xml")
        try:
            (result,), _ = xmlrpc.client.loads(text, use_builtin_types=True)
        except xmlrpc.client.Fault as fault:
            if NONE_FAULT in str(fault.faultString):
                return None  # the node found nothing and could not marshal its None
            if isinstance(fault.faultString, str) and fault.faultString.startswith("<"):
                raise NodeProtocolError(f"Bitmessage node failed: {fault.faultString}") from fault
            raise NodeAPIError(fault.faultCode, fault.faultString) from fault
        except Exception as exc:
            raise NodeProtocolError(f"Bitmessage node sent an unreadable XML-RPC answer: {exc}") from exc
        return result

    async def _json_call(self, method: str, params: list[Any]) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        text = await self._post(method, json.dumps(request).encode("utf-8"), "application/json-rpc")
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise NodeProtocolError("Bitmessage node sent an unreadable JSON-RPC answer") from exc
        if not isinstance(answer, dict):
            raise NodeProtocolError("Bitmessage node sent a JSON-RPC answer that is not an object")
        error = answer.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise parse_api_error(message) or NodeProtocolError(f"Bitmessage node failed: {message}")
        return answer.get("result")

    # --- variants --------------------------------------------------------------------------------

    async def detect_variant(self) -> str:
        """Ask clientStatus over XML-RPC: an object means xml, a string legacy, a JSON reply json."""
        body = xmlrpc.client.dumps((), methodname="clientStatus", encoding="utf-8").encode("utf-8")
        text = await self._post("clientStatus", body, "text/xml")
        if text.lstrip().startswith("<"):
            try:
                (result,), _ = xmlrpc.client.loads(text, use_builtin_types=True)
            except Exception as exc:
                raise NodeProtocolError(f"Bitmessage node answered clientStatus with a fault: {exc}") from exc
            return "legacy" if isinstance(result, str) else "xml"
        with contextlib.suppress(ValueError):
            if isinstance(json.loads(text), dict):
                return "json"
        raise NodeProtocolError("Bitmessage node speaks neither XML-RPC nor JSON-RPC")

    async def ensure_variant(self) -> str:
        if self.variant is None:
            async with self._detect_lock:
                if self.variant is None:
                    self.variant = await self.detect_variant()
        return self.variant

    async def raw_call(self, method: str, params: list[Any]) -> Any:
        """One command exactly as given: no base64, no legacy parsing; numbered errors still raise."""
        variant = await self.ensure_variant()
        if variant == "json":
            return await self._json_call(method, params)
        result = await self._xml_call(method, params)
        if variant == "legacy":
            error = parse_api_error(result) if isinstance(result, str) and result.startswith("API Error") else None
            if error is not None:
                raise error
        return result

    # --- commands --------------------------------------------------------------------------------

    def wire_name(self, cmd: bmc.Command, name: str) -> str:
        """Legacy-only aliases are sent under the command's own name, which every variant serves."""
        return cmd.name if name in cmd.legacy_aliases and self.variant != "legacy" else name

    async def call(self, name: str, *args: Any, raw: bool = False, **kwargs: Any) -> Any:
        """Call a command by name or alias; named arguments use the documented parameter names.

        With raw=True the values are sent and returned exactly as the node takes and gives them:
        positional arguments go unchecked (named ones are put in place first), nothing is base64
        encoded or decoded and legacy JSON strings stay strings; numbered errors still raise.
        """
        cmd = bmc.find(name)
        if cmd is None:
            raise bmc.BindError(f"Unknown Bitmessage API command {name!r}")
        await self.ensure_variant()
        method = self.wire_name(cmd, name)
        if raw:
            return await self.raw_call(method, bmc.bind(cmd, args, kwargs) if kwargs else list(args))
        values = bmc.bind(cmd, args, kwargs)
        result = await self.raw_call(method, bmc.encode_args(cmd, values))
        return self.normalize(cmd, result)

    def normalize(self, cmd: bmc.Command, result: Any) -> Any:
        if self.variant == "legacy" and cmd.structured and isinstance(result, str):
            try:
                result = json.loads(result)
            except ValueError as exc:
                raise NodeProtocolError(f"Legacy node sent a result that is not JSON for {cmd.name}") from exc
        return bmc.decode_result(cmd, result)
