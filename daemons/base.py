"""BaseDaemon: the coin-agnostic aiohttp server every daemon stands on.

It owns the transport (``POST /``, ``GET /ws``, ``GET /spec``, ``GET /health``: the HTTP side is
``daemons/http_app.py``, which it inherits), dispatch of the extended JSON-RPC to ``@rpc`` methods,
wallet loading (each wallet exactly once), durable events and the lifecycle. A coin daemon adds its
settings, its load hook, its backend and its methods, and never touches HTTP. See the class
docstring for the hooks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import jsonrpc
from .access import check_basic_auth
from .connections import AcceptErrorLog, ConnectionGuard
from .datapath import prepare_data_path
from .events import EventStore
from .http_app import HTTPEndpoints
from .http_routes import Routes
from .jsonrpc import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    WALLET_LOAD_FAILED,
    WALLET_REQUIRED,
    Request,
    RPCError,
    WalletIdentity,
)
from .metrics import DaemonMetrics
from .rpc import RPCMethod, collect_methods, rpc
from .settings import CommonSettings, Settings, parse_non_negative_float, parse_positive_int
from .spec import SPEC_DIR, load_spec, map_message
from .storage import StorageMonitor, storage_failure
from .wallet_limits import TOO_MANY_WALLETS, WalletLimits, WalletUsage, watched_by_sockets
from .websocket import Hub

__all__ = ["BaseDaemon", "RPCError", "RPCMethod", "StartupError", "WalletIdentity", "check_basic_auth", "rpc"]

logger = logging.getLogger(__name__)
UNSET: Any = object()


class StartupError(Exception):
    """The daemon cannot start (a missing library, an unusable setting); the message says why."""


class BaseDaemon(HTTPEndpoints):
    """A daemon: subclass it, set ``name`` and ``DEFAULT_PORT``, and override the hooks.

    Hooks, each optional: ``load_settings`` (read extra settings with ``self.env``),
    ``load_backend`` (import heavy libraries; raise ``self.missing_library(...)``),
    ``start_backend`` / ``stop_backend`` (app start-up and shutdown), ``health``,
    ``wait_network_ready`` (before ``requires_network`` methods), ``wallet_key``, ``load_wallet``,
    ``unload_wallet``, ``find_dynamic_method`` / ``list_dynamic_methods`` (methods not declared
    with ``@rpc``, such as a wrapped library's commands).
    """

    name = "BASE"
    DEFAULT_PORT = 5000
    VERSION = "0.1.0"
    SPEC_DIR = SPEC_DIR  # where spec/<name>.json lives
    DEFAULT_MAX_WALLETS = 1000  # MAX_WALLETS: wallets loaded at once
    DEFAULT_WALLET_IDLE_TIMEOUT = 3600.0  # WALLET_IDLE_TIMEOUT: seconds unused before an unwatched wallet unloads

    def __init__(self, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> None:
        self.env_reader = Settings(self.name, environ, env_file)
        self.load_settings()
        self.spec = load_spec(self.name, self.SPEC_DIR)
        self.methods: dict[str, RPCMethod] = collect_methods(self)
        self.dynamic_methods: dict[str, RPCMethod] = {}  # what find_dynamic_method found, kept for good
        self.wallets: dict[str, Any] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        self.store: EventStore | None = None
        self.hub: Hub | None = None
        self.storage = StorageMonitor(self.settings.data_path)
        self.wallet_limits = WalletLimits(
            max_wallets=self.env("MAX_WALLETS", cast=parse_positive_int, default=self.DEFAULT_MAX_WALLETS),
            idle_timeout=self.env(
                "WALLET_IDLE_TIMEOUT", cast=parse_non_negative_float, default=self.DEFAULT_WALLET_IDLE_TIMEOUT
            ),
        )
        self.wallet_usage = WalletUsage()
        self._idle_sweeper: asyncio.Task[None] | None = None
        self.backend_loaded = False
        self._routes: Routes | None = None
        self.guard = ConnectionGuard(
            self.settings.max_connections, self.settings.max_connections_per_peer, self.settings.header_timeout
        )
        self.accept_errors = AcceptErrorLog()
        self.metrics = DaemonMetrics(self, require_auth=self.env("METRICS_AUTH", cast=bool, default=True))

    # -- settings and start-up --------------------------------------------------------------

    def env(self, key: str, cast: Callable[[Any], Any] = str, default: Any = UNSET) -> Any:
        """Read ``<NAME>_<key>``; a bad value raises SettingsError naming the variable."""
        if default is UNSET:
            return self.env_reader.get(key, cast=cast)
        return self.env_reader.get(key, cast=cast, default=default)

    def load_settings(self) -> None:
        self.settings = CommonSettings.read(self.env_reader, self.name, self.DEFAULT_PORT)

    def missing_library(self, package: str, how: str) -> StartupError:
        return StartupError(f"The {self.name} daemon needs the '{package}' package, which is not installed: {how}")

    def load_backend(self) -> None:
        """Import heavy libraries here, never at module import time."""

    def ensure_backend_loaded(self) -> None:
        if not self.backend_loaded:
            self.load_backend()
            self.backend_loaded = True

    async def start_backend(self) -> None:
        """Connect to the backend, start pollers."""

    async def stop_backend(self) -> None:
        """Stop pollers and processes, flush state."""

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    async def wait_network_ready(self) -> None:
        """Wait until the backend can serve network calls, or raise RPCError."""

    def metric_families(self) -> Iterable[Any]:
        """The daemon's own Prometheus gauges (``daemons.metrics.gauge``), read at each scrape."""
        return ()

    # -- the application ----------------------------------------------------------------------

    async def on_startup(self) -> None:
        self.ensure_backend_loaded()
        prepare_data_path(self.settings.data_path, self.env_reader.variable("DATA_PATH"))
        self.store = EventStore(
            self.settings.data_path / "events.sqlite3",
            self.settings.events_retention_count,
            self.settings.events_retention_days,
        )
        self.hub = Hub(
            self.store,
            self.name,
            self.wallet_key,
            self.settings.ws_queue_size,
            self.settings.ws_send_timeout,
            watch=self.get_wallet,
        )
        await self.start_backend()
        if self.wallet_limits.idle_timeout > 0:
            self._idle_sweeper = asyncio.ensure_future(self._sweep_idle_wallets())

    async def on_shutdown(self) -> None:
        if self._idle_sweeper is not None:
            self._idle_sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_sweeper
            self._idle_sweeper = None
        if self.hub is not None:
            await self.hub.close_all()

    async def on_cleanup(self) -> None:
        try:
            await self.stop_backend()
            await self.forget_all_wallets()
        finally:
            if self.store is not None:
                self.store.close()

    @property
    def state_db(self) -> Any:
        """The SQLite connection of DATA_PATH's store, for a daemon's own small tables."""
        assert self.store is not None, "the store opens at start-up"
        return self.store.db

    async def handle_single(self, obj: Any) -> dict[str, Any] | None:
        try:
            request = jsonrpc.parse_request(obj)
        except RPCError as error:
            self.metrics.observe_call(None, {"error": {"code": error.code}}, time.perf_counter())
            return jsonrpc.error_response(jsonrpc.request_id_of(obj), error)
        started = time.perf_counter()
        try:
            result = await self.execute(request)
        except RPCError as error:
            response = jsonrpc.error_response(request.id, error)
        except Exception as exc:
            response = jsonrpc.error_response(request.id, self.error_from_exception(request, exc))
        else:
            response = jsonrpc.result_response(request.id, result)
        self.metrics.observe_call(request.method, response, started)
        return None if request.is_notification else response

    def error_from_exception(self, request: Request, exc: Exception) -> RPCError:
        """A storage failure is STORAGE_UNAVAILABLE; a backend's exception becomes the spec's code when its
        message is mapped, else -32603."""
        storage_error = self.storage.error(exc)
        if storage_error is not None:
            return storage_error
        message = str(exc) or type(exc).__name__
        code = map_message(self.spec, message)
        if code is not None:
            return RPCError(code, message)
        logger.error("method %s failed", request.method, exc_info=exc)
        return RPCError(INTERNAL_ERROR, "Internal error")

    def get_method(self, name: str) -> RPCMethod | None:
        method = self.methods.get(name) or self.dynamic_methods.get(name)
        if method is None:
            method = self.find_dynamic_method(name)
            if method is not None:  # built once: its signature and type checks cost more than a whole call
                self.dynamic_methods[name] = method
        return method

    async def execute(self, request: Request) -> Any:
        method = self.get_method(request.method)
        if method is None:
            raise RPCError(METHOD_NOT_FOUND, "Procedure not found")
        if method.requires_wallet and request.identity is None:
            raise RPCError(WALLET_REQUIRED, f"{method.name} needs a wallet: pass it as the 'xpub' argument")
        injected: dict[str, Any] = {"identity": request.identity, "wallet": None}
        bound = method.bind(request.args, request.kwargs, injected)
        if method.requires_network:
            await self.wait_network_ready()
        if request.identity is not None and (method.requires_wallet or method.takes_wallet):
            key = self.wallet_key(request.identity)
            usage = self.wallet_usage
            usage.hold(key)  # not unloaded (idle, or for room) while the call runs
            try:
                wallet = await self.get_wallet(request.identity, key)
                if "wallet" in bound.arguments:
                    bound.arguments["wallet"] = wallet
                return await self.call(method, bound)
            finally:
                usage.release(key)
        return await self.call(method, bound)

    async def call(self, method: RPCMethod, bound: inspect.BoundArguments) -> Any:
        # BoundArguments.args and .kwargs walk the signature on every call: skip them when keywords do.
        func = method.func
        result = func(**bound.arguments) if method.by_keyword else func(*bound.args, **bound.kwargs)
        if method.is_async or inspect.isawaitable(result):
            result = await result
        return result

    def find_dynamic_method(self, name: str) -> RPCMethod | None:
        """A method not declared with @rpc, or None. What it returns serves ``name`` for the daemon's life,
        so a name that cannot be served yet (the library is not loaded) must get None until it can."""
        return None

    def list_dynamic_methods(self) -> list[str]:
        return []

    def method_names(self) -> list[str]:
        return sorted(set(self.methods) | set(self.list_dynamic_methods()))

    def full_spec(self) -> dict[str, Any]:
        catalogue = {}
        for name in self.method_names():
            method = self.get_method(name)
            if method is not None:
                catalogue[name] = method.describe()
        return {**self.spec, "methods": catalogue}

    # -- wallets ------------------------------------------------------------------------------

    def wallet_key(self, identity: WalletIdentity) -> str:
        """The wallet's name in events, websocket scopes and the wallet cache.

        It is stored in DATA_PATH and sent to listeners: a daemon whose identities can be secrets
        (seeds, private keys) should derive a non-secret key from them.
        """
        return identity.key

    async def load_wallet(self, identity: WalletIdentity) -> Any:
        """Build the wallet object for an identity; raise to refuse it (-32005)."""
        return identity

    async def unload_wallet(self, key: str, wallet: Any) -> None:
        """Release what a loaded wallet holds."""

    async def get_wallet(self, identity: WalletIdentity, key: str | None = None) -> Any:
        """The loaded wallet, loading it once however many requests ask for it at the same time.

        A new wallet needs room under MAX_WALLETS: the least recently used unwatched wallet makes it."""
        key = key or self.wallet_key(identity)
        if key in self.wallets:
            self.wallet_usage.touch(key, time.monotonic())
            return self.wallets[key]
        if key not in self._loading:
            await self.make_room_for_wallet()
            if key in self.wallets:  # loaded by another caller while room was made
                return self.wallets[key]
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load_once(key, identity))
            self._loading[key] = pending
        # shield: one impatient caller going away must not cancel the load for everyone else.
        return await asyncio.shield(pending)

    async def _load_once(self, key: str, identity: WalletIdentity) -> Any:
        try:
            wallet = await self.load_wallet(identity)
        except RPCError:
            raise
        except Exception as exc:
            storage_error = self.storage.error(exc)  # a full disk is no fault of the key given
            raise storage_error or RPCError(WALLET_LOAD_FAILED, f"Error loading wallet: {exc}") from exc
        finally:
            self._loading.pop(key, None)
        self.wallets[key] = wallet
        self.wallet_usage.touch(key, time.monotonic())
        return wallet

    def add_wallet_loaded_at_start(self, key: str, wallet: Any) -> None:
        """A wallet the daemon loads by itself at start-up: loaded now, so its idle time starts now.

        (Put straight into ``wallets`` it had no last use, counted as unused since the clock's zero, and the
        first idle sweep after a restart unloaded it.)"""
        self.wallets[key] = wallet
        self.wallet_usage.touch(key, time.monotonic())

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """Whether a payment may still reach the wallet (open requests): such a wallet is never unloaded."""
        return False

    def watched_wallets(self) -> set[str]:
        """Wallets that stay loaded: scoped to by a websocket, or kept by ``keeps_watching``."""
        watched = watched_by_sockets(self.hub.clients) if self.hub is not None else set()
        for key, wallet in list(self.wallets.items()):
            if key in watched:
                continue
            try:
                keeps = self.keeps_watching(key, wallet)
            except Exception:  # a wallet that cannot say is kept: unloading it could lose a payment
                logger.exception("could not tell whether wallet %s has open requests", key)
                keeps = True
            if keeps:
                watched.add(key)
        return watched

    async def make_room_for_wallet(self) -> None:
        """Unload the least recently used unwatched wallet while MAX_WALLETS are loaded; -32051 if none can go."""
        while len(self.wallets) + len(self._loading) >= self.wallet_limits.max_wallets:
            candidates = self.wallet_usage.unloadable(self.wallets, self.watched_wallets())
            if not candidates and self._loading:  # wallets being loaded cannot go yet: wait for one
                await asyncio.wait(list(self._loading.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            if not candidates:
                variable = self.env_reader.variable("MAX_WALLETS")
                raise RPCError(
                    TOO_MANY_WALLETS,
                    f"Too many wallets: {len(self.wallets)} are loaded ({variable}={self.wallet_limits.max_wallets}) "
                    "and each is watched (open requests, a scoped websocket) or in use; raise "
                    f"{variable}, or close_wallet one that is done",
                )
            await self.forget_wallet(candidates[0])

    async def unload_idle_wallets(self) -> list[str]:
        """Unload the unwatched wallets unused for WALLET_IDLE_TIMEOUT seconds; returns their keys."""
        idle = self.wallet_usage.idle(
            self.wallets, self.watched_wallets(), time.monotonic(), self.wallet_limits.idle_timeout
        )
        unloaded = []
        for key in idle:
            if key not in self.wallet_usage.holders and await self.forget_wallet(key):
                unloaded.append(key)
        return unloaded

    async def _sweep_idle_wallets(self) -> None:
        while True:
            await asyncio.sleep(self.wallet_limits.sweep_interval)
            try:
                await self.unload_idle_wallets()
            except Exception:
                logger.exception("unloading idle wallets failed")

    async def forget_all_wallets(self) -> list[str]:
        """Unload every wallet (at shutdown): each one is tried, and each failure is logged once.

        A wallet that cannot be saved (a full disk) must not keep the others from being saved."""
        failed = []
        for key in list(self.wallets):
            try:
                await self.forget_wallet(key)
            except Exception as exc:
                reason = storage_failure(exc) or f"{type(exc).__name__}: {exc}"
                logger.error("wallet %s could not be saved and unloaded: %s", key, reason)
                failed.append(key)
        return failed

    async def forget_wallet(self, key: str) -> bool:
        self.wallet_usage.forget(key)
        wallet = self.wallets.pop(key, None)
        if wallet is None:
            return False
        await self.unload_wallet(key, wallet)
        return True

    # -- events -------------------------------------------------------------------------------

    async def notify(
        self,
        event: str,
        fields: dict[str, Any],
        wallet: str | None = None,
        also: Callable[[sqlite3.Connection], Any] | None = None,
    ) -> int:
        """Store an event durably, then push it to the sockets whose scope it concerns. Returns its id.

        ``also(db)`` runs in the event's own transaction on ``state_db``: record there that the event
        was reported, and a crash can neither lose it nor send it twice.
        """
        assert self.store is not None and self.hub is not None, "events start with the app"
        stored = self.store.append(event, fields, wallet, also)
        self.hub.publish(stored)
        return stored.id

    def notify_threadsafe(
        self, loop: asyncio.AbstractEventLoop, event: str, fields: dict[str, Any], wallet: str | None = None
    ) -> concurrent.futures.Future[int]:
        """``notify`` from a foreign thread; events keep the order in which threads submit them."""
        return asyncio.run_coroutine_threadsafe(self.notify(event, fields, wallet), loop)

    # -- methods every daemon has --------------------------------------------------------------

    @rpc
    async def help(self, method: str | None = None) -> Any:
        """Without an argument, the names of all methods; with one, its parameters and doc."""
        if method is None:
            return self.method_names()
        found = self.get_method(method)
        if found is None:
            raise RPCError(METHOD_NOT_FOUND, "Procedure not found")
        return {"name": found.name, **found.describe()}

    @rpc
    async def get_updates(self, identity: WalletIdentity | None = None, since: int | None = None) -> list[dict]:
        """Stored events of the wallet: after ``since``, or since this wallet's previous get_updates call.

        The wallet is loaded (if it is not yet), so that a client that only polls is watching it."""
        if identity is None:
            raise RPCError(WALLET_REQUIRED, "get_updates needs a wallet: pass it as the 'xpub' argument")
        assert self.store is not None
        if since is not None:
            self.store.check_since(since)
        await self.get_wallet(identity)  # a client that only polls is watching the wallet too
        return [event.to_message() for event in self.store.updates_for(self.wallet_key(identity), since)]
