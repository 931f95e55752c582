"""Async client of XMRig 6's HTTP API: protocol only, no daemon logic and no storage.

XMRig serves /2/summary, /2/backends, /2/config (read, and write by replacing the whole config) and
/json_rpc (pause, resume, stop). Its answers are turned into data or into one of the exceptions below, so the
daemon can map each real behaviour (401, 403, restricted mode, a miner that is down, a server that is not
XMRig, the malformed backends JSON of XMRig before 6.22.2) to a clear error and to the miner's state.
Each exception names the state (``state``) a miner is in when its summary fails that way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
from dataclasses import dataclass
from typing import Any

from yarl import URL

from daemons.xmrig_http import HTTPAnswer, HTTPProtocolError, exchange

JSON_TYPE = "application/json"  # XMRig answers 415 unless Content-Type is exactly this
SUMMARY_FIELDS = ("version", "ua", "kind", "hashrate", "connection", "results", "paused")


class XMRigError(Exception):
    """Base of every error talking to a miner; messages never contain the access token."""

    state = "error"


class MinerUnauthorized(XMRigError):
    """401: the miner wants a token and got none, or got one while it has none configured."""

    state = "unauthorized"


class MinerForbidden(MinerUnauthorized):
    """403 on a read: the miner rejected our access token."""

    state = "forbidden"


class MinerRestricted(XMRigError):
    """403 on a write (or on reading the config): the miner's API runs in restricted mode."""

    state = "restricted"


class MinerUnavailable(XMRigError):
    """The miner cannot be reached or did not answer in time."""

    state = "unreachable"


class MinerNotReady(XMRigError):
    """/2/backends answered malformed JSON, which XMRig before 6.22.2 did in its first minutes."""


class ConfigRejected(XMRigError):
    """XMRig answered 400 to a config write: the config is not one it can load (e.g. no enabled pool)."""


class MinerBadResponse(XMRigError):
    """An answer XMRig 6 would not give: unexpected status, unparsable body."""

    state = "bad_response"


class NotXMRig(MinerBadResponse):
    """The server at the miner's URL is not XMRig's HTTP API (an HTML page, JSON of another shape, a 404)."""

    state = "not_xmrig"


@dataclass(frozen=True)
class MinerEndpoint:
    """Where and how to reach one miner's HTTP API."""

    name: str
    url: str
    token: str | None = None
    tls: bool = False
    verify_tls: bool = True

    def __repr__(self) -> str:  # keeps the token out of logs and tracebacks
        return f"MinerEndpoint(name={self.name!r}, url={self.url!r}, tls={self.tls}, verify_tls={self.verify_tls})"

    @property
    def base_url(self) -> str:
        return normalize_url(self.url, self.tls)


def normalize_url(url: str, tls: bool = False) -> str:
    """``host:port`` or ``http(s)://host:port`` -> a base URL; ``tls`` forces https. ValueError if unusable."""
    text = url.strip()
    if "://" not in text:
        text = ("https://" if tls else "http://") + text
    parsed = URL(text)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) URL of a miner: {url!r}")
    if tls:
        parsed = parsed.with_scheme("https")
    return str(parsed.origin())


def is_xmrig_summary(summary: Any) -> bool:
    """True for what XMRig's /2/summary (or /1/summary) must contain: the miner's version, user agent and
    kind ("miner"; xmrig-proxy says "proxy"), and the hashrate, connection and results sections
    (6.26.0: src/core/Miner.cpp getMiner/getHashrate, src/base/net/stratum/NetworkState.cpp)."""
    if not isinstance(summary, dict) or any(key not in summary for key in SUMMARY_FIELDS):
        return False
    hashrate, connection = summary["hashrate"], summary["connection"]
    return (
        isinstance(summary["version"], str)
        and isinstance(summary["ua"], str)
        and summary["kind"] == "miner"
        and isinstance(hashrate, dict)
        and isinstance(hashrate.get("total"), list)
        and isinstance(connection, dict)
        and "pool" in connection
        and isinstance(summary["results"], dict)
    )


class XMRigClient:
    """Calls one miner's HTTP API; each call is one connection, as XMRig closes it after every answer."""

    _rpc_ids = itertools.count(1)

    def __init__(self, endpoint: MinerEndpoint, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.base_url = endpoint.base_url

    @property
    def name(self) -> str:
        return self.endpoint.name

    # ------------------------------------------------------------------ endpoints
    async def summary(self) -> dict[str, Any]:
        """/2/summary, checked to come from XMRig (NotXMRig otherwise)."""
        try:
            summary = await self._get_json("/2/summary")
        except NotXMRig:
            raise
        except MinerBadResponse as exc:
            raise NotXMRig(f"{exc}: {self.base_url} does not serve XMRig's API") from exc
        if not is_xmrig_summary(summary):
            raise NotXMRig(f"miner {self.name}: {self.base_url} answers, but not with an XMRig summary")
        return summary

    async def backends(self) -> list[Any]:
        try:
            backends = await self._get_json("/2/backends")
        except MinerBadResponse as exc:
            if isinstance(exc.__cause__, ValueError):
                raise MinerNotReady(
                    f"miner {self.name}: backends not ready yet (XMRig before 6.22.2 answers malformed JSON "
                    "while a hashrate is not computed yet)"
                ) from exc
            raise
        if not isinstance(backends, list):
            raise NotXMRig(f"miner {self.name}: /2/backends is not a list, so this is not XMRig")
        return backends

    async def config(self) -> dict[str, Any]:
        config = await self._get_json("/2/config")
        if not isinstance(config, dict) or not isinstance(config.get("pools"), list):
            raise NotXMRig(f"miner {self.name}: /2/config is not an XMRig config")
        return config

    async def put_config(self, config: dict[str, Any]) -> None:
        """Replace the miner's whole config (XMRig loads the body as a complete config)."""
        await self._call("PUT", "/2/config", config)

    async def json_rpc(self, method: str) -> Any:
        rpc_id = next(self._rpc_ids)
        body = {"method": method, "jsonrpc": "2.0", "id": rpc_id}
        answer = self._decode(await self._call("POST", "/json_rpc", body))
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0" or answer.get("id") != rpc_id:
            raise NotXMRig(f"miner {self.name}: /json_rpc did not answer like XMRig")
        if isinstance(answer.get("error"), dict):
            error = answer["error"]
            raise MinerBadResponse(f"miner {self.name}: {method} failed: {error.get('message')} ({error.get('code')})")
        if "result" not in answer:
            raise NotXMRig(f"miner {self.name}: /json_rpc did not answer like XMRig")
        return answer["result"]

    async def pause(self) -> Any:
        return await self.json_rpc("pause")

    async def resume(self) -> Any:
        return await self.json_rpc("resume")

    async def stop(self) -> Any:
        return await self.json_rpc("stop")

    async def start(self) -> None:
        """XMRig has no start call; re-sending its own config rebuilds (and so restarts) the miner."""
        await self.put_config(await self.config())

    # ------------------------------------------------------------------ transport
    async def _get_json(self, path: str) -> Any:
        return self._decode(await self._call("GET", path))

    def _decode(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise MinerBadResponse(f"miner {self.name}: answer is not JSON") from exc

    def _headers(self, with_body: bool) -> dict[str, str]:
        headers = {"Accept": JSON_TYPE}
        if with_body:
            headers["Content-Type"] = JSON_TYPE
        if self.endpoint.token:
            headers["Authorization"] = f"Bearer {self.endpoint.token}"
        return headers

    async def _call(self, method: str, path: str, body: Any = None) -> str:
        answer = await self._send(method, path, body)
        text = answer.body.decode("utf-8", errors="replace")
        if not 200 <= answer.status < 300:
            raise await self._error(method, path, answer.status, text)
        content_type = answer.headers.get("content-type", "")
        if text and content_type.split(";")[0].strip().lower() != JSON_TYPE:  # XMRig sends JSON bodies only
            raise NotXMRig(f"miner {self.name}: {method} {path} answered {content_type or 'untyped'} content")
        return text

    async def _send(self, method: str, path: str, body: Any) -> HTTPAnswer:
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers(body is not None)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await exchange(self.base_url, method, path, headers, data, self.endpoint.verify_tls)
        except TimeoutError as exc:
            raise MinerUnavailable(f"miner {self.name} did not answer in time") from exc
        except ssl.SSLError as exc:
            raise MinerUnavailable(
                f"miner {self.name}: TLS failed ({type(exc).__name__}); "
                "for a self-signed certificate set verify_tls to false"
            ) from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise MinerUnavailable(f"miner {self.name} is unreachable ({type(exc).__name__})") from exc
        except HTTPProtocolError as exc:
            raise NotXMRig(f"miner {self.name}: {exc}") from exc
        return answer

    async def _error(self, method: str, path: str, status: int, text: str) -> XMRigError:
        """The exception for a non-2xx answer; a 403 is told apart by probing the (always readable) summary."""
        if status == 401:
            if self.endpoint.token:
                return MinerUnauthorized(f"miner {self.name} rejected the access token (it has none configured)")
            return MinerUnauthorized(f"miner {self.name} requires an access token")
        if status == 403:
            return await self._forbidden(method, path)
        if status == 400 and path.endswith("/config"):
            return ConfigRejected(f"miner {self.name} rejected the config: {_error_text(text)}")
        return MinerBadResponse(f"miner {self.name}: {method} {path} answered HTTP {status}: {_error_text(text)}")

    async def _forbidden(self, method: str, path: str) -> XMRigError:
        rejected = MinerForbidden(f"miner {self.name} rejected the access token")
        if method == "GET" and path == "/2/summary":
            return rejected
        try:
            summary = await self.summary()
        except MinerForbidden:
            return rejected
        except XMRigError as exc:
            return exc
        if summary.get("restricted"):
            return MinerRestricted(f"miner {self.name} runs its API in restricted mode: {method} {path} is refused")
        return MinerBadResponse(f"miner {self.name}: {method} {path} answered HTTP 403")


def _error_text(text: str) -> str:
    """XMRig's error bodies are ``{"status": ..., "error": ...}``; keep the reason short."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(doc, dict) and "error" in doc:
        return str(doc["error"])
    return text[:200]
