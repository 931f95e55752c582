"""An asyncio client of a PyBitmessage node's API, in its three variants (and auto-detection).

The node serves one HTTP endpoint with Basic auth, speaking either XML-RPC (``apivariant = xml``,
the default), JSON-RPC (``json``) or XML-RPC with every structured result dumped to a JSON string
and errors returned as ``"API Error 00NN: ..."`` strings (``legacy``, pre-0.6.3). This module hides
the difference: whatever the variant, a call returns structured data with base64 text decoded, or
raises NodeAPIError(number, text) for the node's numbered errors. XML-RPC payloads are built and
parsed with the stdlib's ``dumps``/``loads`` and sent with aiohttp, so nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import xmlrpc.client
from typing import Any

import aiohttp

from daemons import bitmessage_commands as bmc

VARIANTS = ("xml", "json", "legacy")
API_ERROR = re.compile(r"API Error (\d{4}): (.*)", re.DOTALL)
NONE_FAULT = "cannot marshal None"


class BitmessageError(Exception):
    """Anything that went wrong talking to the node."""


class NodeUnavailable(BitmessageError):
    """The node cannot be reached (refused, reset, timed out)."""


class NodeAuthError(BitmessageError):
    """The node refused the API username or password (HTTP 401)."""


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


class BitmessageClient:
    """Calls node commands by name (or alias) with positional or named arguments."""

    def __init__(self, url: str, username: str, password: str, variant: str = "auto", timeout: float = 60.0) -> None:
        if variant not in (*VARIANTS, "auto"):
            raise ValueError(f"API variant must be one of xml, json, legacy, auto (got {variant!r})")
        self.url = url
        self.configured_variant = variant
        self.variant: str | None = None if variant == "auto" else variant
        self._auth = aiohttp.BasicAuth(username, password)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._detect_lock = asyncio.Lock()

    def __repr__(self) -> str:  # never show the password
        return f"BitmessageClient(url={self.url!r}, variant={self.variant or self.configured_variant!r})"

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

    async def _post(self, body: bytes, content_type: str) -> str:
        try:
            async with self._get_session().post(self.url, data=body, headers={"Content-Type": content_type}) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            if self.configured_variant == "auto":
                self.variant = None  # the node may come back with another apivariant
            raise NodeUnavailable(f"Bitmessage node at {self.url} is unreachable: {type(exc).__name__}") from exc
        if status == 401:
            raise NodeAuthError("Bitmessage node refused the API username or password")
        if status != 200:
            raise NodeProtocolError(f"Bitmessage node answered HTTP {status}")
        return text

    # --- the two wire formats --------------------------------------------------------------------

    async def _xml_call(self, method: str, params: list[Any]) -> Any:
        body = xmlrpc.client.dumps(tuple(params), methodname=method, encoding="utf-8", allow_none=True)
        text = await self._post(body.encode("utf-8"), "text/xml")
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
        text = await self._post(json.dumps(request).encode("utf-8"), "application/json-rpc")
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
        text = await self._post(body, "text/xml")
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
