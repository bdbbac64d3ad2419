"""The fault suite: real servers stopped, paused, killed and held, through the real app.

A private PostgreSQL cluster (tiny generated fab) and a private Redis server take the
faults; the shared servers are never touched. Data endpoints: ``POST /api/trace/lineage``
(slow path: dedicated connections, semaphore) and ``GET /api/warehouse/summary`` (pooled
path). Every request for lineage asks for a container it has not asked for before, so no
cache could answer in the warehouse's place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from faults import (
    PrivatePostgres,
    app_client,
    load_tiny,
    private_postgres,
    private_redis,
    process_warehouse,
    wait_until,
)
from mesdash.admin.auth import hash_token
from mesdash.core.cache import reset_l2_backoff
from mesdash.core.resilience.errors import QueryTimeout
from mesdash.web.summary import clear_summary_cache

pytestmark = pytest.mark.timeout(180)
TOKEN = "fault-suite-admin-token"
OPEN_WAIT = 2.0  # the testing profile's CIRCUIT_BREAKER_OPEN_WAIT_SECONDS


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        load_tiny(server.create_database("fault"))
        yield server


@pytest.fixture(scope="module")
def container_ids(pg: PrivatePostgres) -> list[str]:
    rows = pg.execute("SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER ORDER BY CONTAINERID", "fault")
    return [r[0] for r in rows]


class Lineage:
    """Posts lineage requests, each for a container not asked for before."""

    def __init__(self, client: Any, ids: list[str]) -> None:
        self.client = client
        self.ids = iter(ids)

    def __call__(self) -> Any:
        return self.client.post("/api/trace/lineage", json={"container_ids": [next(self.ids)]})


@pytest.fixture
def env(pg: PrivatePostgres) -> dict[str, str]:
    return {
        "MESDASH_DATABASE_URL": pg.url("fault"),
        "MESDASH_API_TOKENS": f"{hash_token(TOKEN)}:admin",
    }


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert response.headers["content-type"].startswith("application/problem+json")
    return body


def _summary(client: Any) -> Any:
    clear_summary_cache()
    return client.get("/api/warehouse/summary")


def _backends(pg: PrivatePostgres, where: str = "") -> list[tuple[Any, ...]]:
    return pg.execute(
        "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
        f"WHERE datname = 'fault' AND pid <> pg_backend_pid() {where}",
        "fault",
    )


class TableLock:
    """Holds ACCESS EXCLUSIVE on a table in an open transaction: readers of it hang."""

    def __init__(self, pg: PrivatePostgres, table: str = "dwh.DW_MES_CONTAINER") -> None:
        self.conn = psycopg.connect(pg.url("fault"))
        self.conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        self.pid = self.conn.info.backend_pid

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


# ------------------------------------------------------------------ warehouse stop ----
def test_warehouse_stopped_then_circuit_open_then_recovery(
    pg: PrivatePostgres, container_ids: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(monkeypatch, **env) as client:
        lineage = Lineage(client, container_ids[1:])
        cached = {"container_ids": [container_ids[0]]}
        first = client.post("/api/trace/lineage", json=cached)
        assert first.status_code == 200
        wh = process_warehouse()
        assert client.get("/health").json()["status"] == "healthy"
        pg.stop()
        try:
            health = client.get("/health")
            assert health.status_code == 503
            body = health.json()
            assert body["status"] == "unhealthy"
            assert body["services"]["database"]["code"] == "DB_UNAVAILABLE"
            assert body["resilience"]["recovery_recommendation"]["action"] == "check_warehouse"

            # the breaker counts connect failures: 5 of the window open it
            for _ in range(5):
                response = lineage()
                problem = _problem(response, 503, "DB_UNAVAILABLE")
                assert int(response.headers["Retry-After"]) == problem["retry_after_seconds"] == 10
            assert wh.breaker.state == "OPEN"

            calls = wh.stats.count
            for _ in range(4):
                response = lineage()
                problem = _problem(response, 503, "CIRCUIT_OPEN")
                assert 1 <= int(response.headers["Retry-After"]) <= OPEN_WAIT
                assert problem["retry_after_seconds"] == int(response.headers["Retry-After"])
            summary = _summary(client)  # the pooled path is behind the same breaker
            _problem(summary, 503, "CIRCUIT_OPEN")
            hit = client.post("/api/trace/lineage", json=cached)  # a cache hit still answers
            assert hit.status_code == 200 and hit.json() == first.json()
            assert wh.stats.count == calls, "no warehouse call while the circuit is open"
        finally:
            pg.start()
        returned = time.monotonic()

        # recovery: within one open wait of the warehouse's return, probes close the circuit
        def answered() -> bool:
            return lineage().status_code == 200

        wait_until(answered, OPEN_WAIT + 2.0, interval=0.2, what="lineage answered again")
        assert time.monotonic() - returned <= OPEN_WAIT + 2.0
        wait_until(lambda: wh.breaker.state == "CLOSED" or not answered(), 5, what="breaker closed")
        assert wh.breaker.state == "CLOSED"
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "healthy"


def test_open_circuit_with_answering_warehouse_is_degraded_not_down(
    pg: PrivatePostgres, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(monkeypatch, **env) as client:
        wh = process_warehouse()
        for _ in range(5):
            wh.breaker.on_failure(0.1)
        response = client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["circuit_breaker"]["state"] == "OPEN"
        assert "circuit breaker OPEN" in body["degraded_reason"]
        assert body["services"]["database"]["status"] == "ok"
        assert body["resilience"]["recovery_recommendation"]["action"] == "wait_for_half_open"
        assert {"code": "CIRCUIT_OPEN", "message": "circuit breaker OPEN"} in body["resilience"]["alerts"]


# ---------------------------------------------------------------- pool exhaustion -----
def test_pool_held_by_pg_sleep_gives_pool_exhausted(
    pg: PrivatePostgres, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "1"}
    with app_client(monkeypatch, **env, **settings) as client:
        assert _summary(client).status_code == 200
        wh = process_warehouse()
        pool = wh.driver.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (1, 0, 1.0)
        holder = threading.Thread(target=wh.read_sql_df, args=("SELECT pg_sleep(3)",))
        holder.start()
        try:
            wait_until(lambda: wh.pool_status()["checked_out"] == 1, 5, what="pool held")
            calls_before = wh.breaker.snapshot()["calls"]
            started = time.monotonic()
            response = _summary(client)
            assert time.monotonic() - started < 2.5
            problem = _problem(response, 503, "DB_POOL_EXHAUSTED")
            assert response.headers["Retry-After"] == "5" and problem["retry_after_seconds"] == 5

            health = client.get("/health").json()  # its probe does not need the pool
            assert health["status"] == "healthy"
            assert any(a["code"] == "POOL_SATURATED" for a in health["resilience"]["alerts"])
            assert health["resilience"]["recovery_recommendation"]["action"] == "throttle"
            metrics = client.get("/metrics").text
            assert 'mesdash_db_pool_connections{state="checked_out"} 1.0' in metrics
            assert wh.breaker.snapshot()["calls"] == calls_before, "pool exhaustion is not a breaker failure"
        finally:
            holder.join()
        assert _summary(client).status_code == 200


# ----------------------------------------------------------------- semaphore wait -----
def test_slow_query_slots_busy_gives_db_busy(
    pg: PrivatePostgres, container_ids: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(monkeypatch, **env, DB_SLOW_SEMAPHORE_WAIT_SECONDS="1") as client:
        lineage = Lineage(client, container_ids[100:])
        wh = process_warehouse()
        assert wh.bulkhead.max_concurrent == 1  # the testing profile
        holder = threading.Thread(target=wh.read_sql_df_slow, args=("SELECT pg_sleep(2.5)",))
        holder.start()
        try:
            wait_until(lambda: wh.bulkhead.active == 1, 5, what="slot held")
            result: dict[str, Any] = {}
            waiter = threading.Thread(target=lambda: result.update(response=lineage()))
            waiter.start()
            wait_until(lambda: wh.bulkhead.waiting == 1, 5, what="a request waiting for a slot")
            metrics = client.get("/metrics").text
            assert 'mesdash_db_slow_semaphore{state="active"} 1.0' in metrics
            assert 'mesdash_db_slow_semaphore{state="waiting"} 1.0' in metrics
            waiter.join()
            response = result["response"]
            problem = _problem(response, 503, "DB_BUSY")
            assert response.headers["Retry-After"] == "5" and problem["retry_after_seconds"] == 5
        finally:
            holder.join()
        assert wh.bulkhead.active == 0 and wh.bulkhead.rejected == 1
        assert lineage().status_code == 200


# -------------------------------------------------------------------- hung query ------
def test_hung_query_times_out_and_leaves_the_database(
    pg: PrivatePostgres, container_ids: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts = {"DB_SLOW_CALL_TIMEOUT_MS": "1500", "DB_CALL_TIMEOUT_MS": "1500"}
    with app_client(monkeypatch, **env, **timeouts) as client:
        lineage = Lineage(client, container_ids[200:])
        assert lineage().status_code == 200 and _summary(client).status_code == 200
        lock = TableLock(pg)
        try:
            for request in (lineage, lambda: _summary(client)):
                started = time.monotonic()
                response = request()
                assert time.monotonic() - started < 4
                _problem(response, 504, "QUERY_TIMEOUT")
                assert "retry_after_seconds" not in response.json()
            time.sleep(0.3)
            waiting = _backends(pg, f"AND pid <> {lock.pid} AND state = 'active'")
            assert waiting == [], "the timed-out queries were cancelled in the database"
        finally:
            lock.release()
        assert lineage().status_code == 200


# ------------------------------------------------------------ killed connections ------
def _terminate_all(pg: PrivatePostgres, *keep: int) -> int:
    spared = ", ".join(str(pid) for pid in ("pg_backend_pid()", *keep))
    rows = pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = 'fault' AND pid NOT IN ({spared})",
        "fault",
    )
    return len(rows)


def test_terminated_backends_give_db_unavailable_then_recover(
    pg: PrivatePostgres, container_ids: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(monkeypatch, **env) as client:
        lineage = Lineage(client, container_ids[300:])
        assert _summary(client).status_code == 200
        lock = TableLock(pg)
        result: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: result.update(response=_summary(client)))
        try:
            waiter.start()
            wait_until(
                lambda: bool(_backends(pg, f"AND pid <> {lock.pid} AND wait_event_type = 'Lock'")),
                5,
                what="a request blocked on the lock",
            )
            assert _terminate_all(pg, lock.pid) >= 1  # the backend of the blocked request
            waiter.join(10)
        finally:
            lock.release()
            waiter.join()
        response = result["response"]
        _problem(response, 503, "DB_UNAVAILABLE")
        assert response.headers["Retry-After"] == "10"
        wh = process_warehouse()
        assert wh.pool_status()["checked_out"] == 0

        # idle pooled connections killed behind the pool's back: pre-ping replaces them
        assert _summary(client).status_code == 200
        assert _terminate_all(pg) >= 1
        assert _summary(client).status_code == 200
        assert lineage().status_code == 200
        assert wh.breaker.state == "CLOSED"


# ----------------------------------------------------------------- paused server ------
def test_paused_server_gives_timeouts_not_hangs(
    pg: PrivatePostgres, container_ids: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(monkeypatch, **env, DB_CALL_TIMEOUT_MS="1000") as client:
        lineage = Lineage(client, container_ids[400:])
        assert _summary(client).status_code == 200 and lineage().status_code == 200
        wh = process_warehouse()

        # a query already running when the server stops answering
        lock = TableLock(pg)
        outcome: dict[str, Any] = {}

        def blocked_read() -> None:
            try:
                wh.read_sql_df("SELECT COUNT(*) FROM dwh.DW_MES_CONTAINER", timeout_seconds=1.0)
            except Exception as exc:
                outcome["error"] = exc

        reader = threading.Thread(target=blocked_read)
        try:
            reader.start()
            wait_until(lambda: bool(_backends(pg, "AND wait_event_type = 'Lock'")), 5, what="reader blocked")
            pg.pause()
            started = time.monotonic()
            reader.join(15)
            assert not reader.is_alive(), "the reader hung on the paused server"
            assert isinstance(outcome.get("error"), QueryTimeout)
            assert time.monotonic() - started < 6  # 1 s timeout + 2 s unanswered cancel

            # new requests: bounded waits, 503 answers — a pool pre-ping of at most 3 s, then a
            # connect bounded by the call's 1 s (at libpq's 2 s floor), not the 5 s cap
            for request in (lambda: _summary(client), lineage, lambda: client.get("/health")):
                started = time.monotonic()
                response = request()
                assert time.monotonic() - started < 8, "a request hung on the paused server"
                assert response.status_code == 503, response.text
        finally:
            pg.resume()
            lock.release()
        wait_until(lambda: lineage().status_code == 200, OPEN_WAIT + 5, interval=0.3, what="recovery")
        assert client.get("/health").json()["status"] == "healthy"


# -------------------------------------------------------------------------- Redis -----
def test_redis_stopped_is_degraded_and_answers_still_served(
    container_ids: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        private_redis() as redis_server,
        app_client(monkeypatch, **env, MESDASH_REDIS_URL=redis_server.url) as client,
    ):
        lineage = Lineage(client, container_ids[500:])
        health = client.get("/health").json()
        assert health["status"] == "healthy" and health["services"]["redis"]["status"] == "ok"
        built = client.post("/api/reject-history/query", json={"start_date": "2026-06-24", "end_date": "2026-06-30"})
        assert built.status_code == 200, built.text
        report = built.json()["query_id"]
        deep = client.get("/health/deep", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert deep["queues"]["backend"] == "rq"
        assert set(deep["queues"]["queues"]) >= {"trace-events", "reports", "msd", "query-tool"}

        redis_server.stop()
        response = client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["services"]["redis"]["status"] == "error"
        assert body["degraded_reason"] == "Redis unavailable"
        assert body["resilience"]["recovery_recommendation"]["action"] == "check_redis"
        assert lineage().status_code == 200
        assert _summary(client).status_code == 200
        # What lives only in Redis (job state, report datasets) is a degraded 503, not a 500.
        for path in ("/api/jobs/0123456789abcdef", f"/api/reject-history/summary?query_id={report}"):
            down = client.get(path)
            assert down.status_code == 503, (path, down.text)
            assert down.json()["code"] == "REDIS_UNAVAILABLE" and int(down.headers["Retry-After"]) > 0
        deep = client.get("/health/deep", headers={"Authorization": f"Bearer {TOKEN}"})
        assert deep.status_code == 200 and deep.json()["queues"]["error"]

        redis_server.start()  # same port: the client reconnects by itself
        wait_until(lambda: client.get("/health").json()["status"] == "healthy", 5, what="healthy again")


def test_primary_query_failed_by_a_redis_outage_holds_no_later_request(
    env: dict[str, str], pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A primary query that held its plan's lock when Redis went down fails with the designed
    503; Redis keeps its keys across the restart (appendonly, as in the stress setup), so the
    dead leader's lock is still there — the same query sent after the restart must not wait
    on it (it did, up to twice ``DB_SLOW_CALL_TIMEOUT_MS``: 600 s), only until the dead
    leader's lease (``CACHE_LEASE_SECONDS``, 10 s as in production) ran out."""
    import redis

    url = "/api/resource-history/query"
    body = {"start_date": "2026-06-20", "end_date": "2026-06-30"}
    # a waiter would give up on a live lease after 60 s: here only the lease's end frees it
    lease = {"CACHE_LEASE_SECONDS": "10", "CACHE_FOLLOWER_WAIT_SECONDS": "60"}
    with (
        private_redis(appendonly=True) as redis_server,
        app_client(monkeypatch, **env, MESDASH_REDIS_URL=redis_server.url, **lease) as client,
    ):
        direct = redis.Redis.from_url(redis_server.url)
        answers: dict[str, Any] = {}

        def post(name: str) -> threading.Thread:
            thread = threading.Thread(target=lambda: answers.update({name: client.post(url, json=body)}))
            thread.start()
            return thread

        held = TableLock(pg, "dwh.DW_MES_RESOURCESTATUS_SHIFT")  # the leader waits inside its plan
        try:
            leader = post("leader")
            wait_until(lambda: bool(direct.keys("*:batch:resource:*:lock")), 20, what="plan lock taken")
            redis_server.stop()
        finally:
            held.release()
        leader.join(90)
        assert not leader.is_alive()
        _problem(answers["leader"], 503, "REDIS_UNAVAILABLE")
        assert int(answers["leader"].headers["Retry-After"]) > 0

        redis_server.start()  # same port, same append-only file: the leader's keys are back
        [lock] = direct.keys("*:batch:resource:*:lock")  # the dead leader's, with its expiry
        assert 0 < direct.pttl(lock) <= 10_000
        wait_until(lambda: client.get("/health").json()["status"] == "healthy", 15, what="healthy again")
        reset_l2_backoff()  # as once CACHE_L2_BACKOFF_SECONDS passed: the follower meets the lease
        follower = post("follower")
        follower.join(30)  # the client's deadline, far below the stress suite's 60 s
        if follower.is_alive():
            redis_server.stop()  # ends the wait, so the app can close
            follower.join(60)
            pytest.fail("the query sent after the outage was still waiting at its deadline")
        assert answers["follower"].status_code == 200, answers["follower"].text
        assert answers["follower"].json()["quality"]["status"] == "complete"
