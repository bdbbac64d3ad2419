"""What /health, /health/deep, the admin status and the watchdog look at.

``health_payload`` is cheap: its own ``SELECT 1`` outside the breaker, a Redis PING, and
in-memory numbers (breaker, pool, semaphore, restart policy, memory). The status is
``unhealthy`` if and only if the warehouse probe fails; an open breaker, a Redis outage,
memory pressure or a stuck worker make it ``degraded``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil

from mesdash.admin.policy import PolicyStatus, RestartPolicy
from mesdash.admin.workers import WorkerInfo, master_pid, workers
from mesdash.core.db.warehouse import Warehouse, get_warehouse
from mesdash.core.redis_client import RedisHealth, get_redis
from mesdash.core.resilience.errors import MesdashError
from mesdash.settings import Settings

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------ probes -------
def probe_warehouse(settings: Settings) -> tuple[Warehouse | None, dict[str, Any]]:
    """The process warehouse and the result of its own ``SELECT 1`` (never the breaker)."""
    try:
        wh = get_warehouse()
    except MesdashError as exc:
        return None, {"status": "error", "dialect": settings.dialect, "code": exc.code, "detail": exc.detail}
    try:
        seconds = wh.ping(settings.health_probe_timeout_seconds)
    except MesdashError as exc:
        return wh, {"status": "error", "dialect": wh.dialect, "code": exc.code, "detail": exc.detail}
    return wh, {"status": "ok", "dialect": wh.dialect, "latency_ms": round(seconds * 1000, 2)}


def probe_redis() -> dict[str, Any]:
    client = get_redis()
    if client is None:
        return {"status": "disabled", "detail": "MESDASH_REDIS_URL is not set: L1 cache, in-process jobs"}
    start = time.monotonic()
    try:
        client.ping()
    except Exception as exc:  # any redis or socket error: Redis is unavailable
        RedisHealth.failed(exc)
        log.warning("Redis unavailable: %s", exc)
        return {"status": "error", "code": type(exc).__name__, "detail": "Redis does not answer PING"}
    RedisHealth.ok()
    return {"status": "ok", "latency_ms": round((time.monotonic() - start) * 1000, 2)}


def breaker_snapshot(wh: Warehouse | None) -> dict[str, Any]:
    snapshot = getattr(getattr(wh, "breaker", None), "snapshot", None)
    if snapshot is None:
        return {"state": "DISABLED", "enabled": False}
    data: dict[str, Any] = snapshot()
    return data


# ---------------------------------------------------------------- recommendation -------
@dataclass
class Signals:
    database_ok: bool
    breaker_state: str
    remaining_open_seconds: float
    redis: str  # ok | error | disabled
    pool_saturated: bool
    semaphore_waiting: int
    memory_percent: float
    memory_limit: float
    stuck_workers: list[int]
    policy: PolicyStatus
    reasons: list[str] = field(default_factory=list)

    @property
    def memory_pressure(self) -> bool:
        return self.memory_percent >= self.memory_limit


def recommend(s: Signals) -> dict[str, str]:
    """The next operator action: one of observe, throttle, wait_for_half_open,
    controlled_restart, wait_for_cooldown, investigate_churn, check_warehouse, check_redis."""

    def rec(action: str, reason: str) -> dict[str, str]:
        return {"action": action, "reason": reason}

    if not s.database_ok:
        return rec(
            "check_warehouse", "the warehouse does not answer SELECT 1; restarting mesdash will not help"
        )
    if s.breaker_state == "OPEN":
        return rec(
            "wait_for_half_open",
            f"circuit open: warehouse calls fail fast; probe calls start in {s.remaining_open_seconds:.0f}s",
        )
    if s.breaker_state == "HALF_OPEN":
        return rec("observe", "circuit half-open: probe calls decide whether it closes")
    if s.memory_pressure or s.stuck_workers:
        why = (
            f"system memory at {s.memory_percent:.0f}%"
            if s.memory_pressure
            else f"worker(s) {', '.join(map(str, s.stuck_workers))} stopped answering their heartbeat"
        )
        if s.policy.state == "cooldown":
            return rec(
                "wait_for_cooldown",
                f"{why}; next restart allowed in {s.policy.cooldown_remaining_seconds:.0f}s",
            )
        if s.policy.state == "blocked":
            return rec(
                "investigate_churn",
                f"{why}; restart churn threshold reached: a restart needs a manual override",
            )
        return rec("controlled_restart", f"{why}: reload the workers gracefully")
    if s.pool_saturated or s.semaphore_waiting:
        return rec("throttle", "warehouse connections or slow-query slots are saturated: reduce load")
    if s.redis == "error":
        return rec("check_redis", "Redis is unavailable: cache is process-local and jobs cannot queue")
    if s.policy.churn_exceeded:
        return rec("investigate_churn", "restarts are frequent: find the cause before restarting again")
    return rec("observe", "all checks pass")


def _alerts(s: Signals, pool: dict[str, Any]) -> list[dict[str, str]]:
    alerts = []
    if not s.database_ok:
        alerts.append({"code": "DB_UNAVAILABLE", "message": "warehouse probe failed"})
    if s.breaker_state != "CLOSED" and s.breaker_state != "DISABLED":
        alerts.append({"code": "CIRCUIT_" + s.breaker_state, "message": f"circuit breaker {s.breaker_state}"})
    if s.redis == "error":
        alerts.append({"code": "REDIS_UNAVAILABLE", "message": "Redis does not answer"})
    if s.pool_saturated:
        alerts.append(
            {"code": "POOL_SATURATED", "message": f"{pool.get('checked_out')} warehouse connections in use"}
        )
    if s.semaphore_waiting:
        alerts.append({"code": "SEMAPHORE_WAITING", "message": f"{s.semaphore_waiting} slow queries waiting"})
    if s.memory_pressure:
        alerts.append({"code": "MEMORY_PRESSURE", "message": f"system memory at {s.memory_percent:.0f}%"})
    if s.stuck_workers:
        alerts.append({"code": "WORKER_STUCK", "message": f"stale heartbeat: {s.stuck_workers}"})
    if s.policy.churn_exceeded:
        alerts.append({"code": "RESTART_CHURN", "message": f"{s.policy.churn_count} restarts in the window"})
    return alerts


def thresholds(settings: Settings, breaker: dict[str, Any]) -> dict[str, Any]:
    return {
        "circuit_breaker": breaker.get("thresholds", {}),
        "db_pool_size": settings.db_pool_size,
        "db_max_overflow": settings.db_max_overflow,
        "db_pool_timeout_seconds": settings.db_pool_timeout,
        "db_pool_exhausted_retry_after_seconds": settings.db_pool_exhausted_retry_after_seconds,
        "db_call_timeout_ms": settings.db_call_timeout_ms,
        "db_slow_max_concurrent": settings.db_slow_max_concurrent,
        "db_slow_call_timeout_ms": settings.db_slow_call_timeout_ms,
        "db_slow_semaphore_wait_seconds": settings.db_slow_semaphore_wait_seconds,
        "heavy_query_max_concurrent": settings.heavy_query_max_concurrent,
        "worker_restart_cooldown_seconds": settings.worker_restart_cooldown,
        "worker_restart_churn_window_seconds": settings.worker_restart_churn_window_seconds,
        "worker_restart_churn_threshold": settings.worker_restart_churn_threshold,
        "memory_pressure_percent": settings.watchdog_memory_percent,
        "worker_stuck_seconds": settings.watchdog_stuck_seconds,
    }


def _pool_saturated(pool: dict[str, Any], settings: Settings) -> bool:
    if pool.get("kind") != "queue":
        return False
    return int(pool.get("checked_out", 0)) >= settings.db_pool_size + settings.db_max_overflow


def worker_list(settings: Settings) -> tuple[int | None, list[WorkerInfo]]:
    master = master_pid(settings.run_path)
    return master, workers(settings.run_path, master) if master is not None else []


# --------------------------------------------------------------------- payloads --------
def health_payload(settings: Settings) -> dict[str, Any]:
    wh, database = probe_warehouse(settings)
    redis_check = probe_redis()
    breaker = breaker_snapshot(wh)
    pool = wh.pool_status() if wh is not None else {"kind": "unknown"}
    semaphore = wh.bulkhead.snapshot() if wh is not None else {}
    policy = RestartPolicy(settings).status()
    _, procs = worker_list(settings)
    signals = Signals(
        database_ok=database["status"] == "ok",
        breaker_state=str(breaker.get("state", "DISABLED")),
        remaining_open_seconds=float(breaker.get("remaining_open_seconds", 0.0)),
        redis=redis_check["status"],
        pool_saturated=_pool_saturated(pool, settings),
        semaphore_waiting=int(semaphore.get("waiting", 0)),
        memory_percent=psutil.virtual_memory().percent,
        memory_limit=settings.watchdog_memory_percent,
        stuck_workers=[w.pid for w in procs if w.stuck(settings.watchdog_stuck_seconds)],
        policy=policy,
    )
    degraded = []
    if signals.breaker_state in ("OPEN", "HALF_OPEN"):
        degraded.append(f"circuit breaker {signals.breaker_state}")
    if signals.redis == "error":
        degraded.append("Redis unavailable")
    if signals.memory_pressure:
        degraded.append("memory pressure")
    if signals.stuck_workers:
        degraded.append("stuck worker")
    status = "unhealthy" if not signals.database_ok else "degraded" if degraded else "healthy"
    if not signals.database_ok:
        degraded.insert(0, "warehouse unreachable")
    return {
        "status": status,
        "checked_at": datetime.now(UTC).isoformat(),
        "services": {"database": database, "redis": redis_check},
        "degraded_reason": "; ".join(degraded) or None,
        "circuit_breaker": {
            k: breaker.get(k)
            for k in ("state", "enabled", "failures", "calls", "failure_rate", "remaining_open_seconds")
            if k in breaker
        },
        "pool": pool,
        "semaphore": semaphore,
        "resilience": {
            "thresholds": thresholds(settings, breaker),
            "alerts": _alerts(signals, pool),
            "restart_churn": {
                "count": policy.churn_count,
                "threshold": policy.churn_threshold,
                "window_seconds": policy.churn_window_seconds,
                "exceeded": policy.churn_exceeded,
            },
            "policy_state": policy.state,
            "cooldown_remaining_seconds": policy.cooldown_remaining_seconds,
            "recovery_recommendation": recommend(signals),
        },
    }
