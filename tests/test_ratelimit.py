"""Rate limits in process and on the real Redis: N allowed then 429 with a bounded
retry_after, units, independent buckets and clients, window expiry, the per-domain settings,
client identity, and a Redis that dies mid-test (falls back without error)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from faults import private_redis
from mesdash.core import redis_client
from mesdash.core.ratelimit import DOMAINS, RateLimiter, client_identity, domain_limit
from mesdash.core.resilience.errors import MesdashError, RateLimited
from mesdash.core.resilience.problem import install_problem_handlers
from mesdash.settings import reset_settings


def use_redis(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    namespace = f"mesdash-test-rl-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MESDASH_REDIS_URL", url)
    monkeypatch.setenv("MESDASH_CACHE_NAMESPACE", namespace)
    reset_settings()
    redis_client.reset_redis()
    return namespace


@pytest.fixture
def shared_redis(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[str]:
    namespace = use_redis(monkeypatch, redis_url)
    yield namespace
    conn = redis_client.get_redis()
    assert conn is not None
    for key in conn.scan_iter(f"{namespace}:*"):
        conn.delete(key)
    redis_client.reset_redis()


@pytest.fixture(params=["process", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("shared_redis")
        assert redis_client.get_redis() is not None
    else:
        redis_client.reset_redis()
        assert redis_client.get_redis() is None
    return str(request.param)


def refused(limiter: RateLimiter, bucket: str, client: str, units: int = 1, **limit: Any) -> MesdashError:
    with pytest.raises(RateLimited) as err:
        limiter.hit(bucket, client, units, **limit)
    error: MesdashError = err.value
    return error


def test_n_allowed_then_429_with_bounded_retry_after(backend: str) -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.hit("history", "addr:1", max_requests=3, window_seconds=30)
    err = refused(limiter, "history", "addr:1", max_requests=3, window_seconds=30)
    assert err.status == 429 and err.code == "RATE_LIMITED"
    assert err.retry_after is not None and 0 < err.retry_after <= 30
    assert err.retry_after > 25  # the window opened just now
    assert err.extra == {"bucket": "history"}
    # a refused request consumed nothing: still refused, not pushed further out
    again = refused(limiter, "history", "addr:1", max_requests=3, window_seconds=30).retry_after
    assert again is not None and again <= err.retry_after


def test_units_count(backend: str) -> None:
    limiter = RateLimiter()
    limiter.hit("jobs", "c", 3, max_requests=5, window_seconds=30)
    refused(limiter, "jobs", "c", 3, max_requests=5, window_seconds=30)
    limiter.hit("jobs", "c", 2, max_requests=5, window_seconds=30)
    refused(limiter, "jobs", "c", 1, max_requests=5, window_seconds=30)


def test_one_unit_per_requested_domain(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVT_HISTORY_RATE_MAX_REQUESTS", "2")
    monkeypatch.setenv("EVT_HOLDS_RATE_MAX_REQUESTS", "3")
    reset_settings()
    limiter = RateLimiter()
    limiter.hit_domains(["history", "holds"], "c")
    limiter.hit_domains(["history", "holds", "history"], "c")  # a domain named twice counts once
    err = refused(limiter, "history", "c")
    assert err.retry_after is not None and 0 < err.retry_after <= 60
    limiter.hit("holds", "c")  # the third unit of holds
    refused(limiter, "holds", "c")
    limiter.hit_domains(["rejects"] * 5, "c")
    with pytest.raises(RateLimited):
        limiter.hit_domains(["rejects", "history"], "c")


def test_buckets_and_clients_are_independent(backend: str) -> None:
    limiter = RateLimiter()
    limit: dict[str, Any] = {"max_requests": 2, "window_seconds": 30}
    for _ in range(2):
        limiter.hit("history", "addr:a", **limit)
    refused(limiter, "history", "addr:a", **limit)
    for _ in range(2):
        limiter.hit("history", "addr:b", **limit)  # another client
        limiter.hit("materials", "addr:a", **limit)  # another bucket
    refused(limiter, "history", "addr:b", **limit)
    refused(limiter, "materials", "addr:a", **limit)


def test_window_expiry(backend: str) -> None:
    limiter = RateLimiter()
    limit: dict[str, Any] = {"max_requests": 2, "window_seconds": 0.4}
    limiter.hit("rejects", "c", **limit)
    limiter.hit("rejects", "c", **limit)
    err = refused(limiter, "rejects", "c", **limit)
    assert err.retry_after is not None and 0 < err.retry_after <= 0.4
    time.sleep(err.retry_after + 0.05)
    limiter.hit("rejects", "c", **limit)
    limiter.hit("rejects", "c", **limit)
    refused(limiter, "rejects", "c", **limit)


def test_in_process_window_with_injected_clock() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.hit("holds", "c", max_requests=1, window_seconds=60)
    now[0] += 45
    assert refused(limiter, "holds", "c", max_requests=1, window_seconds=60).retry_after == pytest.approx(15)
    now[0] += 15
    limiter.hit("holds", "c", max_requests=1, window_seconds=60)


def test_redis_is_shared_between_limiters_with_a_namespaced_key(shared_redis: str) -> None:
    """Two limiters stand for two web processes: the count lives in Redis."""
    first, second = RateLimiter(), RateLimiter()
    first.hit("upstream_history", "token:ab", 2, max_requests=3, window_seconds=20)
    refused(second, "upstream_history", "token:ab", 2, max_requests=3, window_seconds=20)
    second.hit("upstream_history", "token:ab", 1, max_requests=3, window_seconds=20)
    conn = redis_client.get_redis()
    assert conn is not None
    key = f"{shared_redis}:rl:upstream_history:token:ab"
    assert conn.get(key) == b"3"
    assert 0 < conn.pttl(key) <= 20_000
    assert first.local.windows == {} and second.local.windows == {}  # nothing counted in process


def test_redis_down_falls_back_without_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with private_redis() as server:
        use_redis(monkeypatch, server.url)
        limiter = RateLimiter()
        limiter.hit("history", "c", max_requests=2, window_seconds=30)
        assert limiter.local.windows == {}
        server.stop()
        redis_client.RedisHealth.ok()
        started = time.monotonic()
        limiter.hit("history", "c", max_requests=2, window_seconds=30)  # Redis gone: no error
        limiter.hit("history", "c", max_requests=2, window_seconds=30)
        err = refused(limiter, "history", "c", max_requests=2, window_seconds=30)
        assert time.monotonic() - started < 5
        assert err.retry_after is not None and 0 < err.retry_after <= 30
        assert redis_client.RedisHealth.last_error is not None
        assert limiter.local.windows[("history", "c")][0] == 2
        # during the back-off Redis is not asked at all
        monkeypatch.setattr(limiter, "_redis_hit", lambda *a: pytest.fail("Redis asked during back-off"))
        limiter.hit("holds", "c", max_requests=2, window_seconds=30)
    redis_client.RedisHealth.ok()
    redis_client.reset_redis()


def test_domain_limits_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DOMAINS == (
        "history",
        "materials",
        "rejects",
        "holds",
        "jobs",
        "upstream_history",
        "downstream_rejects",
    )
    assert {d: domain_limit(d) for d in DOMAINS} == dict.fromkeys(DOMAINS, (20, 60.0))
    monkeypatch.setenv("EVT_DOWNSTREAM_REJECTS_RATE_MAX_REQUESTS", "7")
    monkeypatch.setenv("EVT_DOWNSTREAM_REJECTS_RATE_WINDOW_SECONDS", "15")
    reset_settings()
    assert domain_limit("downstream_rejects") == (7, 15.0)
    assert domain_limit("history") == (20, 60.0)
    with pytest.raises(ValueError, match="unknown domain"):
        domain_limit("lineage")
    with pytest.raises(ValueError):
        RateLimiter().hit("lineage", "c")  # not a domain and no explicit limit


def test_client_identity_and_429_response() -> None:
    limiter = RateLimiter()
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/who")
    def who(client: str = Depends(client_identity)) -> dict[str, str]:
        limiter.hit("history", client, max_requests=1, window_seconds=30)
        return {"client": client}

    http = TestClient(app)
    digest = hashlib.sha256(b"secret-token").hexdigest()[:16]
    assert http.get("/who").json() == {"client": "addr:testclient"}
    bearer = {"Authorization": "Bearer secret-token"}
    assert http.get("/who", headers=bearer).json() == {"client": f"token:{digest}"}
    other = {"Authorization": "Bearer another-token"}
    assert http.get("/who", headers=other).status_code == 200  # another token, another count

    refused_response = http.get("/who", headers=bearer)
    assert refused_response.status_code == 429
    assert refused_response.headers["content-type"].startswith("application/problem+json")
    body = refused_response.json()
    assert body["code"] == "RATE_LIMITED" and 0 < body["retry_after_seconds"] <= 30
    assert refused_response.headers["Retry-After"] == str(body["retry_after_seconds"])
    assert http.get("/who").status_code == 429  # the address's own count is used up too
