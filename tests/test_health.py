"""/health, /health/deep and /metrics on both dialects, with and without Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from faults import app_client, free_port, process_warehouse
from mesdash.admin.auth import hash_token
from mesdash.settings import Settings

TOKEN = "health-admin-token"
AS_ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def env(tiny_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MESDASH_DATABASE_URL": tiny_url,
        "MESDASH_API_TOKENS": f"{hash_token(TOKEN)}:admin",
        "MESDASH_RUN_DIR": str(tmp_path / "run"),
        "MESDASH_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }


@pytest.fixture
def client(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with app_client(monkeypatch, **env) as c:
        yield c


def _lot(client: Any) -> str:
    summary = client.get("/api/warehouse/summary").json()
    assert summary["tables"]
    wh = process_warehouse()
    return str(wh.read_sql_df("SELECT MIN(CONTAINERID) AS C FROM dwh.DW_MES_CONTAINER").rows[0][0])


# ------------------------------------------------------------------------ /health ----
def test_health_when_all_is_well(client: Any, tiny_url: str) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    dialect = "postgresql" if tiny_url.startswith("postgresql") else "duckdb"
    assert body["status"] == "healthy" and body["degraded_reason"] is None
    database = body["services"]["database"]
    assert database["status"] == "ok" and database["dialect"] == dialect and database["latency_ms"] > 0
    assert body["services"]["redis"]["status"] == "disabled"
    assert body["circuit_breaker"]["state"] == "CLOSED"
    if dialect == "postgresql":
        assert body["pool"] == {
            "kind": "queue",
            "size": 5,
            "checked_out": 0,
            "overflow": body["pool"]["overflow"],
            "max_overflow": 10,
            "timeout_seconds": 2.0,
        }
    else:
        assert body["pool"] == {"kind": "none"}
    assert body["semaphore"]["max_concurrent"] == 1 and body["semaphore"]["active"] == 0
    resilience = body["resilience"]
    thresholds = resilience["thresholds"]
    assert thresholds["circuit_breaker"] == {
        "window_size": 10,
        "min_failures": 5,
        "failure_rate": 0.5,
        "open_wait_seconds": 2.0,
        "half_open_permits": 3,
        "slow_call_seconds": 30.0,
    }
    assert thresholds["db_pool_exhausted_retry_after_seconds"] == 5
    assert thresholds["worker_restart_cooldown_seconds"] == 2.0
    assert thresholds["worker_restart_churn_threshold"] == 3
    assert resilience["alerts"] == []
    assert resilience["policy_state"] == "allowed" and resilience["cooldown_remaining_seconds"] == 0.0
    assert resilience["restart_churn"] == {
        "count": 0,
        "threshold": 3,
        "window_seconds": 600.0,
        "exceeded": False,
    }
    assert resilience["recovery_recommendation"] == {"action": "observe", "reason": "all checks pass"}


def test_health_probe_bypasses_the_breaker(client: Any) -> None:
    wh = process_warehouse()
    calls = wh.stats.count
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert wh.stats.count == calls  # SELECT 1 is not a counted warehouse call
    assert wh.breaker.snapshot()["calls"] == 0


def test_health_is_memoized_outside_testing(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(env="testing").health_memo_seconds == 0
    assert Settings(env="production").health_memo_seconds == 5
    with app_client(monkeypatch, **env) as client:  # testing: every call probes
        first = client.get("/health").json()["checked_at"]
        time.sleep(0.01)
        assert client.get("/health").json()["checked_at"] != first
    with app_client(monkeypatch, **env, HEALTH_MEMO_SECONDS="0.5") as client:
        first = client.get("/health").json()["checked_at"]
        time.sleep(0.05)
        assert client.get("/health").json()["checked_at"] == first
        time.sleep(0.5)
        assert client.get("/health").json()["checked_at"] != first


def test_missing_embedded_warehouse_is_unhealthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'missing.duckdb'}"
    with app_client(monkeypatch, MESDASH_DATABASE_URL=url) as client:
        response = client.get("/health")
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["services"]["database"]["code"] == "DB_UNAVAILABLE"
        assert body["degraded_reason"] == "warehouse unreachable"
        assert body["circuit_breaker"]["state"] == "DISABLED" and body["pool"] == {"kind": "unknown"}
        assert body["resilience"]["recovery_recommendation"]["action"] == "check_warehouse"
        assert body["resilience"]["alerts"][0]["code"] == "DB_UNAVAILABLE"


def test_redis_up_and_down(env: dict[str, str], redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with app_client(monkeypatch, **env, MESDASH_REDIS_URL=redis_url) as client:
        body = client.get("/health").json()
        assert body["status"] == "healthy" and body["services"]["redis"]["status"] == "ok"
        assert body["services"]["redis"]["latency_ms"] >= 0
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with app_client(monkeypatch, **env, MESDASH_REDIS_URL=closed) as client:
        response = client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded" and body["degraded_reason"] == "Redis unavailable"
        assert body["services"]["redis"] == {
            "status": "error",
            "code": "ConnectionError",
            "detail": "Redis does not answer PING",
        }
        assert body["resilience"]["recovery_recommendation"]["action"] == "check_redis"


# ------------------------------------------------------------------- /health/deep ----
def test_deep_health(client: Any, tiny_url: str) -> None:
    assert client.get("/health/deep").status_code == 401
    lot = _lot(client)
    assert client.post("/api/trace/lineage", json={"container_ids": [lot]}).status_code == 200
    response = client.get("/health/deep", headers=AS_ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"]["warehouse"]["latency_ms"] > 0
    assert body["checks"]["redis"]["status"] == "disabled"
    wh = process_warehouse()
    queries = body["queries"]
    assert queries["count"] == wh.stats.count >= 3
    assert queries["slow_path_count"] == wh.stats.slow_count >= 1
    assert queries["failures"] == 0 and queries["slow_calls"] == 0
    latency = queries["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert body["memory"]["system_total_mb"] > body["memory"]["system_available_mb"] > 0
    assert body["memory"]["pressure"] is False
    assert body["workers"]["gunicorn"] is False and body["workers"]["workers"] == []
    assert body["queues"]["backend"] == "in-process" and body["queues"]["threads"] >= 1
    assert body["heavy_queries"] == {"max_concurrent": 0, "enabled": False, "holders": None}
    assert isinstance(body["cache"], dict)
    assert body["semaphore"]["max_concurrent"] == 1


def test_deep_health_with_redis_reports_rq_queues(
    env: dict[str, str], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(
        monkeypatch, **env, MESDASH_REDIS_URL=redis_url, HEAVY_QUERY_MAX_CONCURRENT="2"
    ) as client:
        body = client.get("/health/deep", headers=AS_ADMIN).json()
        queues = body["queues"]
        assert queues["backend"] == "rq" and isinstance(queues["workers"], int)
        for name in ("trace-events", "reports", "msd", "query-tool"):
            assert set(queues["queues"][name]) == {"queued", "started", "failed", "deferred"}
            assert all(isinstance(v, int) and v >= 0 for v in queues["queues"][name].values())
        assert body["heavy_queries"] == {"max_concurrent": 2, "enabled": True, "holders": 0}


# ------------------------------------------------------------------------ /metrics ----
def _samples(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_requests_queries_and_the_breaker(client: Any, tiny_url: str) -> None:
    lot = _lot(client)
    wh = process_warehouse()
    before = _samples(client)
    calls = wh.stats.count
    route = {"method": "POST", "route": "/api/trace/lineage", "status": "200"}
    for _ in range(2):
        assert client.post("/api/trace/lineage", json={"container_ids": [lot]}).status_code == 200
    after = _samples(client)
    name = "mesdash_http_request_duration_seconds_count"
    assert _value(after, name, **route) - _value(before, name, **route) == 2
    queries = sum(
        _value(after, "mesdash_db_query_duration_seconds_count", path=p, outcome="ok")
        - _value(before, "mesdash_db_query_duration_seconds_count", path=p, outcome="ok")
        for p in ("pooled", "slow")
    )
    assert queries == wh.stats.count - calls > 0
    assert _value(after, "mesdash_circuit_breaker_state") == 0
    assert _value(after, "mesdash_db_slow_semaphore", state="max_concurrent") == 1
    assert _value(after, "mesdash_db_slow_semaphore", state="active") == 0
    if tiny_url.startswith("postgresql"):
        assert _value(after, "mesdash_db_pool_connections", state="size") == 5
        assert _value(after, "mesdash_db_pool_connections", state="checked_out") == 0
    unmatched = client.get("/no/such/page")
    assert unmatched.status_code == 404
    assert _value(_samples(client), name, method="GET", route="unmatched", status="404") >= 1

    opened = _value(after, "mesdash_circuit_breaker_transitions_total", to_state="OPEN")
    for _ in range(5):
        wh.breaker.on_failure(0.1)
    final = _samples(client)
    assert _value(final, "mesdash_circuit_breaker_state") == 2
    assert _value(final, "mesdash_circuit_breaker_transitions_total", to_state="OPEN") == opened + 1


def test_metrics_export_cache_counters(client: Any) -> None:
    from mesdash.core.cache import LayeredCache

    cache = LayeredCache("healthtest")
    assert cache.get("absent") is None
    assert cache.get_or_compute("k", lambda: {"v": 1}, ttl=60) == {"v": 1}
    assert cache.get_or_compute("k", lambda: {"v": 2}, ttl=60) == {"v": 1}
    samples = _samples(client)
    assert (
        _value(samples, "mesdash_cache_events", cache="healthtest", event="misses")
        == cache.stats()["misses"]
        >= 1
    )
    assert (
        _value(samples, "mesdash_cache_events", cache="healthtest", event="l1_hits")
        == cache.stats()["l1_hits"]
        >= 1
    )
