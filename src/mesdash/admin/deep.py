"""``/health/deep``: everything /health says plus per-check latency, query latency
percentiles, memory, workers, job queues and cache counters."""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

import psutil

from mesdash.admin.diagnostics import health_payload, worker_list
from mesdash.core.db.warehouse import get_warehouse
from mesdash.core.redis_client import get_redis
from mesdash.core.resilience.errors import MesdashError
from mesdash.core.resilience.heavy import HeavyQueryCap
from mesdash.settings import Settings

# The job queues the design names (`mesdash worker` listens on all of them).
DEFAULT_QUEUES = ("trace-events", "reports", "msd", "query-tool")


def _optional(module: str, attr: str) -> Any:
    """An attribute of a module that may not exist yet (jobs, cache)."""
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


def query_stats(settings: Settings) -> dict[str, Any]:
    try:
        wh = get_warehouse()
    except MesdashError:
        return {}
    stats = wh.stats
    with stats.lock:
        latencies = list(stats.latencies)
    limit = settings.circuit_breaker_slow_call_seconds
    return {
        "count": stats.count,
        "slow_path_count": stats.slow_count,
        "failures": stats.failures,
        "slow_calls": sum(1 for s in latencies if s >= limit),
        "slow_call_threshold_seconds": limit,
        "latency_ms": stats.percentiles(),
        "sample_size": len(latencies),
    }


def memory_state(settings: Settings) -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {
        "system_percent": vm.percent,
        "system_available_mb": round(vm.available / 2**20, 1),
        "system_total_mb": round(vm.total / 2**20, 1),
        "process_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "pressure": vm.percent >= settings.watchdog_memory_percent,
        "pressure_percent": settings.watchdog_memory_percent,
    }


def queue_state() -> dict[str, Any]:
    names = tuple(_optional("mesdash.core.jobs", "QUEUE_NAMES") or DEFAULT_QUEUES)
    client = get_redis()
    if client is None:
        stats = _optional("mesdash.core.jobs", "stats")
        return {
            "backend": "in-process",
            "threads": threading.active_count(),
            **({"jobs": stats()} if callable(stats) else {}),
        }
    try:
        from rq import Queue, Worker

        queues = {}
        for name in names:
            q = Queue(name, connection=client)
            queues[name] = {
                "queued": q.count,
                "started": q.started_job_registry.count,
                "failed": q.failed_job_registry.count,
                "deferred": q.deferred_job_registry.count,
            }
        return {"backend": "rq", "queues": queues, "workers": Worker.count(connection=client)}
    except Exception as exc:  # Redis down: say so, the rest of the payload stands
        return {"backend": "rq", "error": type(exc).__name__}


def cache_stats() -> dict[str, Any]:
    all_stats = _optional("mesdash.core.cache", "all_stats")
    return dict(all_stats()) if callable(all_stats) else {}


def deep_payload(settings: Settings) -> dict[str, Any]:
    payload = health_payload(settings)
    master, procs = worker_list(settings)
    payload.update(
        {
            "checks": {
                "warehouse": payload["services"]["database"],
                "redis": payload["services"]["redis"],
            },
            "queries": query_stats(settings),
            "memory": memory_state(settings),
            "workers": {
                "pid": os.getpid(),
                "gunicorn": master is not None,
                "master_pid": master,
                "workers": [w.__dict__ for w in procs],
            },
            "queues": queue_state(),
            "heavy_queries": HeavyQueryCap(settings).snapshot(),
            "cache": cache_stats(),
        }
    )
    return payload
