"""``GET /metrics``: Prometheus exposition (prometheus-client).

Request latency by route comes from a pure-ASGI middleware; warehouse query latency from the
warehouse's ``stats.observers``; breaker transitions from the breaker's listeners. Gauges
(breaker state, pool, semaphore, cache counters) are refreshed from the live objects at
each scrape — and, under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, also after
requests (at most once a second per worker), because in multiprocess mode a scrape is
answered by one worker from the files every worker writes.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesdash.admin.deep import cache_stats
from mesdash.core.db import warehouse as warehouse_module
from mesdash.core.db.warehouse import QueryStats
from mesdash.settings import get_settings

router = APIRouter(tags=["health"])

BREAKER_CODES = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUEST_LATENCY = Histogram(
    "mesdash_http_request_duration_seconds", "HTTP request latency by route", ["method", "route", "status"]
)
REQUESTS_INFLIGHT = Gauge(
    "mesdash_http_requests_inflight", "requests being served", multiprocess_mode="livesum"
)
QUERY_LATENCY = Histogram(
    "mesdash_db_query_duration_seconds",
    "warehouse round trips (pooled and slow path)",
    ["path", "outcome"],
    buckets=QUERY_BUCKETS,
)
BREAKER_STATE = Gauge(
    "mesdash_circuit_breaker_state",
    "warehouse circuit breaker: 0 closed, 1 half-open, 2 open",
    multiprocess_mode="livemax",
)
BREAKER_TRANSITIONS = Counter("mesdash_circuit_breaker_transitions", "breaker state changes", ["to_state"])
POOL = Gauge(
    "mesdash_db_pool_connections", "pooled warehouse connections", ["state"], multiprocess_mode="livesum"
)
SEMAPHORE = Gauge(
    "mesdash_db_slow_semaphore",
    "slow-query semaphore: active, waiting, max, rejected",
    ["state"],
    multiprocess_mode="livesum",
)
CACHE = Gauge(
    "mesdash_cache_events",
    "cache counters since process start (hits, misses, ...)",
    ["cache", "event"],
    multiprocess_mode="livesum",
)

_attached: weakref.WeakSet[Any] = weakref.WeakSet()
_attach_lock = threading.Lock()
_last_refresh = 0.0
INFLIGHT = 0  # requests in this process (also written into the worker heartbeat)


def _observe_query(path: str, seconds: float, ok: bool) -> None:
    QUERY_LATENCY.labels(path=path, outcome="ok" if ok else "error").observe(seconds)


def _on_transition(old: str, new: str) -> None:
    BREAKER_TRANSITIONS.labels(to_state=new).inc()
    BREAKER_STATE.set(BREAKER_CODES.get(new, 0))


def install_observers() -> None:
    """Observe every warehouse round trip of the process (idempotent)."""
    if _observe_query not in QueryStats.observers:
        QueryStats.observers.append(_observe_query)


def attach(wh: Any) -> None:
    """Count a warehouse breaker's transitions (idempotent)."""
    with _attach_lock:
        if wh in _attached:
            return
        _attached.add(wh)
    listeners = getattr(wh.breaker, "listeners", None)
    if listeners is not None:
        listeners.append(_on_transition)


def current_warehouse() -> Any:
    """The process warehouse if one was opened (never opens one)."""
    return warehouse_module._instance


def refresh() -> None:
    """Copy live numbers into the gauges."""
    global _last_refresh
    _last_refresh = time.monotonic()
    wh = current_warehouse()
    if wh is not None:
        attach(wh)
        state = getattr(wh.breaker, "state", "CLOSED")
        BREAKER_STATE.set(BREAKER_CODES.get(state, 0))
        pool = wh.pool_status()
        for name in ("size", "checked_out", "overflow"):
            if name in pool:
                POOL.labels(state=name).set(pool[name])
        sem = wh.bulkhead.snapshot()
        for name in ("active", "waiting", "max_concurrent", "rejected"):
            SEMAPHORE.labels(state=name).set(sem[name])
    for cache, counts in cache_stats().items():
        for event, value in counts.items():
            if event in ("hits", "misses", "l1_hits", "l2_hits", "computes", "evictions"):
                CACHE.labels(cache=cache, event=event).set(value)


def multiprocess_mode() -> bool:
    return get_settings().prometheus_multiproc_dir is not None


def exposition() -> bytes:
    refresh()
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, include_in_schema=False)
def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestMetrics:
    """Pure ASGI middleware: latency by (method, route template, status), in-flight count."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        global INFLIGHT
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        INFLIGHT += 1
        REQUESTS_INFLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            INFLIGHT -= 1
            REQUESTS_INFLIGHT.dec()
            REQUEST_LATENCY.labels(
                method=scope.get("method", ""), route=_route_label(scope), status=str(status)
            ).observe(time.perf_counter() - start)
            if multiprocess_mode() and time.monotonic() - _last_refresh >= 1.0:
                refresh()
            else:
                wh = current_warehouse()
                if wh is not None:
                    attach(wh)
