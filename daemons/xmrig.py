"""XMRIG daemon: XMRig miners' HTTP APIs behind the daemons' JSON-RPC, websocket and spec interface.

Each miner is a "wallet" whose xpub identity is the miner's name. Miners come from the ``XMRIG_MINERS``
setting and from ``add_miner`` at run time (kept in DATA_PATH). One poller per miner reads /2/summary, stores
it as history and turns state changes into events scoped to that miner. The wire protocol lives in
``daemons.xmrig_client``, the storage in ``daemons.xmrig_store`` and the change detection in
``daemons.xmrig_events``; this module only ties them to the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemons.base import BaseDaemon, rpc
from daemons.jsonrpc import INVALID_PARAMS, RPCError, WalletIdentity
from daemons.metrics import Metric, state_gauge
from daemons.settings import SettingsError, parse_positive_float
from daemons.urls import parse_backend_url
from daemons.xmrig_client import (
    ConfigRejected,
    MinerBadResponse,
    MinerEndpoint,
    MinerNotReady,
    MinerRestricted,
    MinerUnauthorized,
    MinerUnavailable,
    XMRigClient,
    XMRigError,
    normalize_url,
)
from daemons.xmrig_config import LockedOut, apply_config, redact
from daemons.xmrig_events import hashrate_of, observe, sum_hashrates
from daemons.xmrig_store import XMRigStore, settings_fingerprint

logger = logging.getLogger(__name__)

MINER_NOT_FOUND = -32010
MINER_UNAUTHORIZED = -32011
MINER_RESTRICTED = -32012
MINER_UNAVAILABLE = -32013
MINER_NOT_READY = -32014
CONFIG_REJECTED = -32015
MINER_BAD_RESPONSE = -32016
MINER_EXISTS = -32017
MINER_FROM_SETTINGS = -32018

ERROR_CODES: dict[type[XMRigError], int] = {
    MinerUnauthorized: MINER_UNAUTHORIZED,
    MinerRestricted: MINER_RESTRICTED,
    MinerUnavailable: MINER_UNAVAILABLE,
    MinerNotReady: MINER_NOT_READY,
    ConfigRejected: CONFIG_REJECTED,
    MinerBadResponse: MINER_BAD_RESPONSE,
}
MAX_NAME_LENGTH = 100
MAX_HISTORY = 10_000


def error_code(exc: XMRigError) -> int:
    """The spec's code for a client exception (subclasses such as MinerForbidden share their parent's)."""
    return next((ERROR_CODES[cls] for cls in type(exc).__mro__ if cls in ERROR_CODES), MINER_BAD_RESPONSE)


@contextlib.contextmanager
def miner_errors() -> Iterator[None]:
    """Turn the client's exceptions into the spec's error codes."""
    try:
        yield
    except XMRigError as exc:
        raise RPCError(error_code(exc), str(exc)) from exc


def endpoint_from(data: Any) -> MinerEndpoint:
    """A miner's settings from a JSON object; ValueError says what is wrong (never echoing the token)."""
    if not isinstance(data, dict):
        raise ValueError("each miner is an object with at least 'name' and 'url'")
    name, url, token = data.get("name"), data.get("url"), data.get("token")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a miner's name is a non-empty string of at most {MAX_NAME_LENGTH} characters")
    if not isinstance(url, str):
        raise ValueError(f"miner {name!r} needs a 'url' string")
    if token is not None and not isinstance(token, str):
        raise ValueError(f"miner {name!r}: 'token' must be a string")
    tls, verify = data.get("tls", False), data.get("verify_tls", True)
    if not isinstance(tls, bool) or not isinstance(verify, bool):
        raise ValueError(f"miner {name!r}: 'tls' and 'verify_tls' are booleans")
    normalize_url(url, tls)  # raises ValueError for an unusable URL
    url, token = token_out_of_url(name, url, token)
    return MinerEndpoint(name, url, token or None, tls, verify)


def token_out_of_url(name: str, url: str, token: str | None) -> tuple[str, str | None]:
    """A token written into the URL (``http://:TOKEN@host:port``, or as its user) becomes the Bearer token.

    The URL is shown (``list_miners``) and stored; the token is neither. Both forms at once: ValueError."""
    text = url.strip()
    backend = parse_backend_url(text if "://" in text else "http://" + text)
    if not backend.has_credentials:
        return url, token
    if token:
        raise ValueError(f"miner {name!r}: a token is given both inside 'url' and as 'token'")
    bare = backend.url if "://" in text else backend.url.removeprefix("http://")
    return bare, backend.password or backend.user


def parse_miners(value: Any) -> list[MinerEndpoint]:
    """``XMRIG_MINERS``: a JSON list of ``{"name", "url", "token"?, "tls"?, "verify_tls"?}``."""
    data = json.loads(value) if isinstance(value, str) else value
    if not isinstance(data, list):
        raise ValueError("a JSON list of miners is expected")
    miners = [endpoint_from(item) for item in data]
    names = [m.name for m in miners]
    if len(set(names)) != len(names):
        raise ValueError("miner names must be unique")
    return miners


def parse_time(value: float | str | None, default: float) -> float:
    """Unix seconds, or an ISO 8601 string (UTC when it has no offset)."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RPCError(INVALID_PARAMS, f"not a time: {value!r} (use unix seconds or ISO 8601)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class Miner:
    """A managed miner: its client, where it was configured, and its poller."""

    client: XMRigClient
    source: str
    origin: str | None = None  # fingerprint of the XMRIG_MINERS entry, for a miner from the setting
    state: str | None = None  # ok, unreachable, unauthorized, forbidden, not_xmrig, bad_response; None: not polled
    reason: str = ""
    pending: MinerEndpoint | None = None  # where the miner will answer once it applies a written http section
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Held by set_config while the miner may be moving its API, so a poll in between reports no false state.
    changing: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def online(self) -> bool | None:
        """Managed through its API right now (None: not polled yet)."""
        return None if self.state is None else self.state == "ok"

    def describe(self) -> dict[str, Any]:
        endpoint = self.client.endpoint
        return {
            "name": endpoint.name,
            "url": self.client.base_url,
            "tls": endpoint.tls,
            "verify_tls": endpoint.verify_tls,
            "has_token": endpoint.token is not None,
            "source": self.source,
            "overridden": self.origin is not None and settings_fingerprint(endpoint) != self.origin,
            "online": self.online,
            "state": self.state,
            "reason": self.reason,
        }


class XMRigDaemon(BaseDaemon):
    """Manages XMRig miners through their HTTP API and pushes their state changes as events."""

    name = "XMRIG"
    DEFAULT_PORT = 5013

    def load_settings(self) -> None:
        super().load_settings()
        self.configured_miners = self._miners_setting()
        self.poll_interval: float = self.env("POLL_INTERVAL", cast=parse_positive_float, default=10.0)
        self.hashrate_interval: float = self.env("HASHRATE_INTERVAL", cast=parse_positive_float, default=60.0)
        self.request_timeout: float = self.env("TIMEOUT", cast=parse_positive_float, default=10.0)
        self.history_days: float = self.env("HISTORY_DAYS", cast=parse_positive_float, default=7.0)
        self.apply_timeout: float = self.env("APPLY_TIMEOUT", cast=parse_positive_float, default=5.0)
        self.miners: dict[str, Miner] = {}

    def _miners_setting(self) -> list[MinerEndpoint]:
        """XMRIG_MINERS, read raw: the core's error would echo the value, and it holds access tokens."""
        name = self.env_reader.variable("MINERS")
        try:
            return parse_miners(self.env_reader.raw("MINERS") or "[]")
        except ValueError as exc:
            raise SettingsError(f"Invalid value for {name}: {exc}") from None

    # ------------------------------------------------------------------ lifecycle
    async def start_backend(self) -> None:
        self.xmrig_store = XMRigStore(self.settings.data_path / "xmrig.sqlite3", self.history_days)
        store = self.xmrig_store
        for endpoint in self.configured_miners:
            origin = settings_fingerprint(endpoint)
            override = await store.run(store.override, endpoint, origin)
            self._start_miner(override or endpoint, "settings", origin)
        for endpoint in await self.xmrig_store.run(self.xmrig_store.load_miners):
            if endpoint.name in self.miners:
                logger.warning("stored miner %s is shadowed by the one in XMRIG_MINERS", endpoint.name)
                continue
            self._start_miner(endpoint, "runtime")

    async def stop_backend(self) -> None:
        for name in list(self.miners):
            await self._stop_miner(name)
        self.xmrig_store.close()

    async def health(self) -> dict[str, Any]:
        online = sum(1 for miner in self.miners.values() if miner.online)
        return {"status": "ok", "miners": len(self.miners), "online": online}

    def metric_families(self) -> Iterator[Metric]:
        states = {"online": 0, "offline": 0, "unknown": 0}
        for miner in self.miners.values():
            states["unknown" if miner.online is None else "online" if miner.online else "offline"] += 1
        yield state_gauge("xmrig_miners", "Managed miners by state (unknown: not polled yet).", states)

    def _start_miner(self, endpoint: MinerEndpoint, source: str, origin: str | None = None) -> Miner:
        miner = Miner(XMRigClient(endpoint, self.request_timeout), source, origin)
        self.miners[endpoint.name] = miner
        miner.task = asyncio.create_task(self._poll_loop(miner), name=f"xmrig-poll-{endpoint.name}")
        return miner

    async def _stop_miner(self, name: str) -> None:
        miner = self.miners.pop(name)
        if miner.task is not None:
            miner.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await miner.task
        await self.forget_wallet(name)

    # ------------------------------------------------------------------ polling
    async def _poll_loop(self, miner: Miner) -> None:
        while True:
            try:
                await self._poll_once(miner)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("polling miner %s failed", miner.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(miner.wake.wait(), self.poll_interval)
            miner.wake.clear()

    async def _poll_once(self, miner: Miner) -> None:
        """One poll: events for what changed (stored before the new state), then the history snapshot."""
        async with miner.changing:
            summary, status, reason = await self._read_summary(miner)
        if status != "ok" and (status, reason) != (miner.state, miner.reason):
            logger.warning("miner %s is %s: %s", miner.name, status, reason)  # once per new state or reason
        now = time.time()
        store = self.xmrig_store
        state = await store.run(store.poll_state, miner.name)
        events, new_state = observe(state, summary, now, self.hashrate_interval, status, reason)
        miner.state, miner.reason = status, reason
        for event, fields in events:
            await self.notify(event, fields, wallet=miner.name)
        await store.run(store.save_poll_state, miner.name, new_state)
        if summary is not None:
            await store.run(store.add_snapshot, miner.name, now, summary)

    async def _read_summary(self, miner: Miner) -> tuple[dict[str, Any] | None, str, str]:
        """(summary, state, reason); a miner that moved its API with set_config is followed there."""
        try:
            return await miner.client.summary(), "ok", ""
        except XMRigError as exc:
            failure = exc
        if miner.pending is not None and isinstance(failure, MinerUnauthorized | MinerUnavailable):
            moved = XMRigClient(miner.pending, self.request_timeout)
            try:
                summary = await moved.summary()
            except XMRigError:
                pass
            else:
                await self._adopt(miner, miner.pending)
                return summary, "ok", ""
        return None, failure.state, str(failure)

    async def _adopt(self, miner: Miner, endpoint: MinerEndpoint) -> None:
        """Use (and keep across restarts) the token, host and port the miner now answers with."""
        miner.pending = None
        if endpoint == miner.client.endpoint:
            return
        miner.client = XMRigClient(endpoint, self.request_timeout)
        store = self.xmrig_store
        if miner.source == "settings":
            await store.run(store.save_override, endpoint, miner.origin)
        else:
            await store.run(store.update_miner, endpoint)
        logger.info("miner %s now answers at %s with the access token set by set_config", miner.name, endpoint.url)

    # ------------------------------------------------------------------ wallets are miners
    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """A miner is configured, not loaded on demand: it is never unloaded."""
        return True

    async def load_wallet(self, identity: WalletIdentity) -> Miner:
        miner = self.miners.get(identity.key)
        if miner is None:
            raise RPCError(MINER_NOT_FOUND, f"no miner named {identity.key!r}; see list_miners")
        return miner

    # ------------------------------------------------------------------ per-miner methods
    @rpc(requires_wallet=True)
    async def summary(self, wallet: Miner) -> dict[str, Any]:
        """The miner's /2/summary: hashrate, shares, pool connection, paused flag."""
        with miner_errors():
            return await wallet.client.summary()

    @rpc(requires_wallet=True)
    async def backends(self, wallet: Miner) -> list[Any]:
        """The miner's /2/backends (CPU, OpenCL, CUDA); -32014 while a freshly started XMRig is not ready."""
        with miner_errors():
            return await wallet.client.backends()

    @rpc(requires_wallet=True)
    async def config(self, wallet: Miner) -> dict[str, Any]:
        """The miner's whole config (/2/config), its access token masked; refused in restricted mode."""
        with miner_errors():
            return redact(await wallet.client.config())

    @rpc(requires_wallet=True)
    async def set_config(self, wallet: Miner, config: dict) -> dict[str, Any]:
        """Merge a partial config into the current one, send it whole (XMRig replaces its config), and wait
        until the miner runs it: ``{"applied": true, "config": <what it runs>}``, or ``applied: false`` with
        the config it still runs when the change did not show within XMRIG_APPLY_TIMEOUT."""
        if not config:
            raise RPCError(INVALID_PARAMS, "config is an object with the settings to change")
        async with wallet.changing:
            try:
                with miner_errors():
                    outcome = await apply_config(wallet.client, config, self.apply_timeout)
            except LockedOut as exc:
                raise RPCError(INVALID_PARAMS, str(exc)) from exc
            if outcome.applied:
                await self._adopt(wallet, outcome.endpoint)
            else:
                wallet.pending = outcome.pending
        wallet.wake.set()
        return {"applied": outcome.applied, "config": None if outcome.config is None else redact(outcome.config)}

    @rpc(requires_wallet=True)
    async def pause(self, wallet: Miner) -> bool:
        """Pause mining (json_rpc pause)."""
        return await self._action(wallet, "pause")

    @rpc(requires_wallet=True)
    async def resume(self, wallet: Miner) -> bool:
        """Resume a paused miner (json_rpc resume)."""
        return await self._action(wallet, "resume")

    @rpc(requires_wallet=True)
    async def stop(self, wallet: Miner) -> bool:
        """Stop the miner's backends (json_rpc stop); ``start`` brings them back."""
        return await self._action(wallet, "stop")

    @rpc(requires_wallet=True)
    async def start(self, wallet: Miner) -> bool:
        """Start a stopped miner: XMRig has no start call, so its own config is sent back, which restarts it."""
        return await self._action(wallet, "start")

    async def _action(self, miner: Miner, action: str) -> bool:
        with miner_errors():
            await getattr(miner.client, action)()
        miner.wake.set()  # poll now so the matching event follows promptly
        return True

    @rpc(requires_wallet=True)
    async def hashrate(self, wallet: Miner) -> dict[str, float | None]:
        """Hashrate averages over 10 s, 60 s and 15 min in H/s, and the highest: 0.0 when the miner hashes
        nothing (stopped, paused, no pool), null only while XMRig's averaging window fills."""
        with miner_errors():
            summary = await wallet.client.summary()
        return {**hashrate_of(summary), "highest": (summary.get("hashrate") or {}).get("highest")}

    @rpc(requires_wallet=True)
    async def history(
        self, wallet: Miner, start: float | str | None = None, end: float | str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Stored summaries of the miner between two times (unix seconds or ISO 8601), oldest first."""
        if not 1 <= limit <= MAX_HISTORY:
            raise RPCError(INVALID_PARAMS, f"limit is between 1 and {MAX_HISTORY}")
        low, high = parse_time(start, 0.0), parse_time(end, float("inf"))
        store = self.xmrig_store
        return await store.run(store.history, wallet.name, low, min(high, 1e18), limit)

    # ------------------------------------------------------------------ across miners
    @rpc
    async def list_miners(self) -> list[dict[str, Any]]:
        """Every managed miner, without its token: where it is, its state (ok, unreachable, unauthorized,
        forbidden, not_xmrig, bad_response) with the reason, and whether set_config moved it (overridden)."""
        return [miner.describe() for miner in self.miners.values()]

    @rpc
    async def add_miner(
        self, name: str, url: str, token: str | None = None, tls: bool = False, verify_tls: bool = True
    ) -> dict[str, Any]:
        """Manage one more miner (kept across restarts); it is polled from now on."""
        try:
            endpoint = endpoint_from({"name": name, "url": url, "token": token, "tls": tls, "verify_tls": verify_tls})
        except ValueError as exc:
            raise RPCError(INVALID_PARAMS, str(exc)) from exc
        if name in self.miners:
            raise RPCError(MINER_EXISTS, f"a miner named {name!r} already exists")
        await self.xmrig_store.run(self.xmrig_store.save_miner, endpoint)
        return self._start_miner(endpoint, "runtime").describe()

    @rpc
    async def remove_miner(self, name: str) -> bool:
        """Stop managing a miner added with add_miner (its history stays until retention drops it)."""
        miner = self.miners.get(name)
        if miner is None:
            raise RPCError(MINER_NOT_FOUND, f"no miner named {name!r}; see list_miners")
        if miner.source == "settings":
            raise RPCError(MINER_FROM_SETTINGS, f"miner {name!r} comes from XMRIG_MINERS: remove it there")
        await self._stop_miner(name)
        await self.xmrig_store.run(self.xmrig_store.delete_miner, name)
        return True

    @rpc
    async def total_hashrate(self) -> dict[str, Any]:
        """Per window, the sum of the figures that exist over the miners that answer, with how many were
        summed (``counted``); each miner's own figures or error alongside."""
        miners = list(self.miners.values())
        answers = await asyncio.gather(*(m.client.summary() for m in miners), return_exceptions=True)
        per_miner: dict[str, Any] = {}
        rates: list[dict[str, float | None]] = []
        for miner, answer in zip(miners, answers, strict=True):
            if isinstance(answer, XMRigError):
                per_miner[miner.name] = {"error": {"code": error_code(answer), "message": str(answer)}}
                continue
            if isinstance(answer, BaseException):
                raise answer
            per_miner[miner.name] = hashrate_of(answer)
            rates.append(per_miner[miner.name])
        return {**sum_hashrates(rates), "answered": len(rates), "miners": per_miner}
