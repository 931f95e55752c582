"""Prometheus metrics of one daemon, served on ``GET /metrics`` with ``prometheus_client``.

Two kinds of figures:

- counted as they happen: HTTP requests by path and status, JSON-RPC calls by method and outcome
  (``ok`` or the error code), and their latencies as histograms, kept as plain numbers and handed
  to prometheus_client's metric families at scrape time;
- read at scrape time from the daemon's state (``StateCollector``): websocket clients and their queued
  events, the event log's size and newest id, wallets loaded, the backend's status and heights from
  the daemon's own ``health()``, and what a daemon adds through ``metric_families()`` (XMR's
  wallet-rpc processes, XMRig's miners by state).

Each daemon has its own registry, so several daemons in one process (as in tests) never mix figures.
Labels only take bounded values: paths outside the daemon's routes are ``other``, unknown methods
``unknown``, so a client cannot grow the exposition by inventing names.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

__all__ = ["DaemonMetrics", "Metric", "gauge", "state_gauge"]

if TYPE_CHECKING:
    from .events import EventStore
    from .storage import StorageMonitor
    from .websocket import Hub

logger = logging.getLogger(__name__)

PREFIX = "coin_daemon"
HEALTH_STATUSES = ("ok", "syncing", "busy", "backend_unavailable")  # what a daemon's health() answers
HEIGHT_KEYS = ("height", "local_height", "server_height", "monerod_height", "target_height")
KNOWN_PATHS = frozenset({"/", "/ws", "/spec", "/health", "/metrics"})
SCRAPE_HEALTH_TIMEOUT = 10.0  # seconds: a hung backend must not hang the scrape
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNKNOWN_METHOD = "unknown"
INVALID_REQUEST = "invalid"  # not a request object: there is no method to name


def gauge(name: str, documentation: str, value: float | None = None, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge family named under the daemons' prefix; add samples with ``add_metric`` when it has labels."""
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value, labels=list(labels) or None)


def state_gauge(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    """A gauge with one sample per state, e.g. ``{"ready": 2, "down": 0}``; list every state, zeros too."""
    family = gauge(name, documentation, labels=("state",))
    for state, count in counts.items():
        family.add_metric([state], count)
    return family


class MeteredDaemon(Protocol):
    """What the metrics read of a daemon (daemons.base.BaseDaemon); declared here because base imports this
    module, so this one imports no base."""

    name: str
    VERSION: str
    wallets: dict[str, Any]
    methods: dict[str, Any]
    dynamic_methods: dict[str, Any]
    store: EventStore | None
    hub: Hub | None
    storage: StorageMonitor

    def metric_families(self) -> Iterable[Any]: ...

    def authorized(self, request: web.BaseRequest) -> bool: ...

    def unauthorized(self) -> web.Response: ...

    async def health(self) -> dict[str, Any]: ...


class StateCollector:
    """Figures read from the daemon when Prometheus scrapes, so they are never stale or double-counted."""

    def __init__(self, daemon: MeteredDaemon) -> None:
        self.daemon = daemon
        self.health: dict[str, Any] = {}  # the last health() answer, refreshed by each scrape
        self.storage_problem: str | None = None  # why DATA_PATH cannot be written, as of the last scrape

    def collect(self) -> Iterator[Metric]:
        daemon = self.daemon
        info = gauge("info", "The daemon's name and version.", labels=("daemon", "version"))
        info.add_metric([daemon.name.lower(), daemon.VERSION], 1)
        yield info
        yield gauge("wallets_loaded", "Wallets loaded in memory.", len(daemon.wallets))
        yield from self.websocket_families()
        yield from self.event_families()
        yield from self.backend_families()
        yield from daemon.metric_families()

    def websocket_families(self) -> Iterator[Metric]:
        clients = list(self.daemon.hub.clients) if self.daemon.hub is not None else []
        yield gauge("websocket_clients", "Connected websocket clients.", len(clients))
        queued = sum(len(client.pending) for client in clients)
        yield gauge("websocket_queued_events", "Live events queued for websocket clients, all sockets.", queued)
        catching_up = sum(1 for client in clients if client.catching_up)
        yield gauge("websocket_catching_up", "Websocket clients reading missed events from the log.", catching_up)

    def event_families(self) -> Iterator[Metric]:
        store = self.daemon.store
        if store is None:
            return
        yield gauge("events_stored", "Events kept in the durable event log.", store.count())
        yield gauge("events_newest_id", "Id of the newest stored event (0: none yet).", store.last_id())

    def backend_families(self) -> Iterator[Metric]:
        current = self.health.get("status", "backend_unavailable")
        status = gauge("backend_status", "1 for the backend's current /health status.", labels=("status",))
        for name in HEALTH_STATUSES:
            status.add_metric([name], 1 if current == name else 0)
        yield status
        writable = 1 if self.storage_problem is None else 0
        yield gauge("storage_available", "1 while DATA_PATH can be written (0: storage_unavailable).", writable)
        heights = gauge("backend_height", "Chain heights /health reports, by which height.", labels=("kind",))
        for key in HEIGHT_KEYS:
            value = self.health.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                heights.add_metric([key], value)
        yield heights


class LatencyHistogram:
    """Counts per latency bucket and their sum, as plain numbers: everything runs on the event loop, so
    the hot path needs none of prometheus_client's per-sample locks (they tripled the cost of a call)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative counts per upper bound, as Prometheus wants them."""
        bounds = [*(str(bound) for bound in LATENCY_BUCKETS), "+Inf"]
        return list(zip(bounds, itertools.accumulate(self.counts), strict=True))


class RequestCollector:
    """Exposes the request figures DaemonMetrics counts (counters and histograms) at scrape time."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        yield counter("http_requests", "HTTP requests by path and status.", ("path", "status"), metrics.http_counts)
        yield histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (websockets excluded: they last as long as the client stays).",
            "path",
            metrics.http_latency,
        )
        yield counter(
            "rpc_calls", "JSON-RPC calls by method and outcome: ok, or the error code answered.",
            ("method", "code"), metrics.call_counts,
        )  # fmt: skip
        yield histogram(
            "rpc_call_duration_seconds", "Time to execute one JSON-RPC call, by method.", "method", metrics.call_latency
        )


def counter(name: str, documentation: str, labels: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> Metric:
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))
    for key, count in counts.items():
        family.add_metric(list(key), count)
    return family


def histogram(name: str, documentation: str, label: str, latencies: dict[str, LatencyHistogram]) -> Metric:
    family = HistogramMetricFamily(f"{PREFIX}_{name}", documentation, labels=[label])
    for key, latency in latencies.items():
        family.add_metric([key], latency.buckets(), sum_value=latency.total)
    return family


class DaemonMetrics:
    """The daemon's registry, what it counts per request, and the ``/metrics`` handler.

    HTTP answers are counted by ``observe_http``, from the daemon's dispatch (daemons/http_routes.py) and,
    for the answers aiohttp gives itself (unparsable requests, a handler's exception), from the connection's
    ``handle_error``; JSON-RPC calls by ``observe_call``, from ``BaseDaemon.handle_single``. Both run for
    every request, so they are written flat (no helper calls but the histogram's).
    """

    def __init__(self, daemon: MeteredDaemon, require_auth: bool) -> None:
        self.daemon = daemon
        self.require_auth = require_auth
        self.http_counts: dict[tuple[str, ...], int] = {}
        self.http_latency: dict[str, LatencyHistogram] = {}
        self.call_counts: dict[tuple[str, ...], int] = {}
        self.call_latency: dict[str, LatencyHistogram] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RequestCollector(self))
        self.state = StateCollector(daemon)
        self.registry.register(self.state)

    def observe_call(self, method: str | None, response: dict[str, Any] | None, started: float) -> None:
        """Count one JSON-RPC call (also a notification, whose response is not sent) and time it: by method
        (``invalid`` when there is none, ``unknown`` for a name no method has) and outcome (``ok``, or the
        JSON-RPC error code answered)."""
        seconds = time.perf_counter() - started
        daemon = self.daemon
        if method is None:
            label = INVALID_REQUEST
        elif method in daemon.methods or method in daemon.dynamic_methods:
            label = method
        else:
            label = UNKNOWN_METHOD
        key = (label, "ok" if response is None or "error" not in response else str(response["error"].get("code")))
        counts = self.call_counts
        counts[key] = counts.get(key, 0) + 1
        latency = self.call_latency.get(label)
        if latency is None:
            latency = self.call_latency[label] = LatencyHistogram()
        latency.observe(seconds)

    def observe_http(self, path: str, status: int, seconds: float) -> None:
        path = path if path in KNOWN_PATHS else "other"
        key = (path, str(status))
        self.http_counts[key] = self.http_counts.get(key, 0) + 1
        if path != "/ws":
            latency = self.http_latency.get(path)
            if latency is None:
                latency = self.http_latency[path] = LatencyHistogram()
            latency.observe(seconds)

    async def handle(self, request: web.BaseRequest) -> web.Response:
        if self.require_auth and not self.daemon.authorized(request):
            return self.daemon.unauthorized()
        self.state.health = await self.read_health()
        self.state.storage_problem = self.daemon.storage.problem()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def read_health(self) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self.daemon.health(), SCRAPE_HEALTH_TIMEOUT)
        except Exception:  # a failing health check is a figure here (backend_unavailable), not a failed scrape
            logger.warning("health check for /metrics failed", exc_info=True)
            return {"status": "backend_unavailable"}
