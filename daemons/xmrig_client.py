"""Async client of XMRig 6's HTTP API: protocol only, no daemon logic and no storage.

XMRig serves /2/summary, /2/backends, /2/config (read, and write by replacing the whole config) and
/json_rpc (pause, resume, stop). Its answers are turned into data or into one of the exceptions below, so the
daemon can map each real behaviour (401, 403, restricted mode, a miner that is down, the malformed backends
JSON of a freshly started miner) to a clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

JSON_TYPE = "application/json"  # XMRig answers 415 unless Content-Type is exactly this


class XMRigError(Exception):
    """Base of every error talking to a miner; messages never contain the access token."""


class MinerUnauthorized(XMRigError):
    """401, or 403 on a read: the miner wants a token, has none, or rejected ours."""


class MinerRestricted(XMRigError):
    """403 on a write (or on reading the config): the miner's API runs in restricted mode."""


class MinerUnavailable(XMRigError):
    """The miner cannot be reached or did not answer in time."""


class MinerNotReady(XMRigError):
    """/2/backends answered malformed JSON, which XMRig does for the first minutes after it starts."""


class ConfigRejected(XMRigError):
    """XMRig answered 400 to a config write: the config is not one it can load (e.g. no enabled pool)."""


class MinerBadResponse(XMRigError):
    """An answer XMRig 6 would not give: unknown route, unexpected status, unparsable body."""


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


class XMRigClient:
    """Calls one miner's HTTP API over a shared aiohttp session."""

    def __init__(self, endpoint: MinerEndpoint, session: aiohttp.ClientSession, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.base_url = endpoint.base_url

    @property
    def name(self) -> str:
        return self.endpoint.name

    # ------------------------------------------------------------------ endpoints
    async def summary(self) -> dict[str, Any]:
        return await self._get_json("/2/summary")

    async def backends(self) -> list[Any]:
        try:
            return await self._get_json("/2/backends")
        except MinerBadResponse as exc:
            if isinstance(exc.__cause__, ValueError):
                raise MinerNotReady(
                    f"miner {self.name}: backends not ready yet (XMRig answers malformed JSON for the first "
                    "minutes after it starts)"
                ) from exc
            raise

    async def config(self) -> dict[str, Any]:
        return await self._get_json("/2/config")

    async def put_config(self, config: dict[str, Any]) -> None:
        """Replace the miner's whole config (XMRig loads the body as a complete config)."""
        await self._call("PUT", "/2/config", config)

    async def json_rpc(self, method: str) -> Any:
        body = {"method": method, "jsonrpc": "2.0", "id": 1}
        answer = self._decode(await self._call("POST", "/json_rpc", body))
        if not isinstance(answer, dict):
            raise MinerBadResponse(f"miner {self.name}: json_rpc answered a non-object")
        if "error" in answer:
            error = answer["error"] or {}
            raise MinerBadResponse(f"miner {self.name}: {method} failed: {error.get('message')} ({error.get('code')})")
        return answer.get("result")

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
        status, text = await self._send(method, path, body)
        if 200 <= status < 300:
            return text
        raise await self._error(method, path, status, text)

    async def _send(self, method: str, path: str, body: Any) -> tuple[int, str]:
        data = None if body is None else json.dumps(body).encode()
        ssl: bool | None = None if self.endpoint.verify_tls else False
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                data=data,
                headers=self._headers(body is not None),
                timeout=self.timeout,
                ssl=ssl,
            ) as response:
                return response.status, await response.text()
        except TimeoutError as exc:
            raise MinerUnavailable(f"miner {self.name} did not answer in time") from exc
        except aiohttp.ClientSSLError as exc:
            raise MinerUnavailable(
                f"miner {self.name}: TLS failed ({type(exc).__name__}); "
                "for a self-signed certificate set verify_tls to false"
            ) from exc
        except aiohttp.ClientError as exc:
            raise MinerUnavailable(f"miner {self.name} is unreachable ({type(exc).__name__})") from exc

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
        rejected = MinerUnauthorized(f"miner {self.name} rejected the access token")
        if method == "GET" and path == "/2/summary":
            return rejected
        try:
            summary = await self.summary()
        except MinerUnauthorized:
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
