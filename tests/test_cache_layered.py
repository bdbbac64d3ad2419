"""The two-level cache against real Redis: round trips, read path, degradation, single-flight.

The shared Redis (127.0.0.1:6379) is used with a unique namespace per test, deleted after;
the "Redis stops" test starts a private redis-server and kills that one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import redis

from mesdash.core.cache import L2, L1Cache, LayeredCache, SingleFlight, cache_key, reset_l1, reset_l2_backoff
from mesdash.core.redis_client import RedisHealth, reset_redis
from mesdash.settings import reset_settings

ROWS = {
    "C1": [{"CONTAINERID": "C1", "TXNDATE": "2026-06-30T07:30:00", "QTY": 25}],
    "C2": [{"CONTAINERID": "C2", "TXNDATE": "2026-06-30T08:00:00", "QTY": 3.5, "NOTE": None}],
}


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str, namespace: str) -> None:
    monkeypatch.setenv("MESDASH_REDIS_URL", url)
    monkeypatch.setenv("MESDASH_CACHE_NAMESPACE", namespace)
    reset_settings()
    reset_redis()
    reset_l1()
    reset_l2_backoff()
    RedisHealth.ok()


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[str]:
    """A unique cache namespace on the shared Redis; its keys are deleted afterwards."""
    ns = f"test-cache-{uuid.uuid4().hex[:12]}"
    _point_at(monkeypatch, redis_url, ns)
    yield ns
    reset_redis()
    reset_l2_backoff()
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{ns}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def new_cache(**kwargs: Any) -> LayeredCache:
    kwargs.setdefault("l1", L1Cache(max_entries=100, max_bytes=10_000_000))
    kwargs.setdefault("flight", SingleFlight())
    return LayeredCache("cache", **kwargs)


class Counter:
    def __init__(self, value: Any, delay: float = 0.0) -> None:
        self.calls = 0
        self.value = value
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.value


# --- L2 round trips and the read path ------------------------------------------------------
def test_l2_round_trip_json_rows_with_ttl(namespace: str, raw: redis.Redis) -> None:
    cache = new_cache()
    key = cache_key("evt", "history", {"container_ids": ["C2", "C1"]})
    assert cache.set(key, ROWS, ttl=300)
    physical = cache.redis_key(key)
    assert physical == f"{namespace}:cache:{key}"
    stored = raw.get(physical)
    assert stored is not None and stored[:1] == b"J"
    assert 299_000 < raw.pttl(physical) <= 300_000

    cache.l1.clear()
    assert cache.get(key) == ROWS  # from L2
    assert physical in cache.l1  # ... and L1 filled
    assert cache.get(key) == ROWS  # from L1
    assert cache.stats()["l2_hits"] == 1 and cache.stats()["l1_hits"] == 1


def test_l2_round_trip_arrow_table_with_ttl(namespace: str, raw: redis.Redis) -> None:
    cache = new_cache()
    table = pa.table(
        {
            "CONTAINERID": ["C1", "C2"],
            "TXNDATE": pa.array([datetime(2026, 6, 30, 7, 30), None], pa.timestamp("us")),
            "QTY": pa.array([25, 3], pa.int32()),
        }
    )
    assert cache.set("tbl", table, ttl=180)
    physical = cache.redis_key("tbl")
    assert raw.get(physical)[:1] == b"A"  # type: ignore[index]
    assert 179_000 < raw.pttl(physical) <= 180_000
    cache.l1.clear()
    back = cache.get("tbl")
    assert isinstance(back, pa.Table) and back.equals(table) and back.schema == table.schema
    assert cache.get("missing", default="none") == "none"


def test_read_path_l1_then_l2_then_compute(namespace: str, raw: redis.Redis) -> None:
    cache = new_cache()
    compute = Counter(ROWS)
    key = cache_key("evt", "holds", {"container_ids": ["C1", "C2"]})

    assert cache.get_or_compute(key, compute, ttl=180) == ROWS  # compute, fill both
    assert compute.calls == 1
    assert 179_000 < raw.pttl(cache.redis_key(key)) <= 180_000
    assert cache.get_or_compute(key, compute, ttl=180) == ROWS  # L1
    cache.l1.clear()
    assert cache.get_or_compute(key, compute, ttl=180) == ROWS  # L2, fills L1
    assert cache.get_or_compute(key, compute, ttl=180) == ROWS  # L1 again
    assert compute.calls == 1
    stats = cache.stats()
    assert {k: stats[k] for k in ("l1_hits", "l2_hits", "misses", "computes", "not_cached")} == {
        "l1_hits": 2,
        "l2_hits": 1,
        "misses": 1,
        "computes": 1,
        "not_cached": 0,
    }
    assert not raw.exists(cache.redis_key(key) + ":lease")  # lease released

    # another process's L1 is empty: a second instance with its own L1 reads L2
    other = new_cache()
    assert other.get_or_compute(key, Counter("never"), ttl=180) == ROWS
    assert other.stats()["l2_hits"] == 1 and other.stats()["computes"] == 0


def test_uncacheable_and_write_false_results_are_not_written(namespace: str, raw: redis.Redis) -> None:
    cache = new_cache()
    partial = {"records_by_cid": ROWS, "quality": {"status": "partial"}}
    compute = Counter(partial)

    def complete(v: dict[str, Any]) -> bool:
        return bool(v["quality"]["status"] == "complete")

    for _ in range(2):
        assert cache.get_or_compute("p", compute, ttl=300, cacheable=complete) == partial
    assert compute.calls == 2
    assert not raw.exists(cache.redis_key("p"))
    assert cache.redis_key("p") not in cache.l1

    for _ in range(2):
        assert cache.get_or_compute("w", compute, ttl=300, write=False) == partial
    assert compute.calls == 4
    assert not raw.exists(cache.redis_key("w"))
    assert cache.redis_key("w") not in cache.l1
    assert cache.stats()["not_cached"] == 4
    assert raw.keys(f"{namespace}:*") == []


def test_unencodable_result_is_returned_but_not_cached(namespace: str, raw: redis.Redis) -> None:
    cache = new_cache()
    value = {"obj": object()}
    assert cache.get_or_compute("u", lambda: value, ttl=60) is value
    assert cache.stats()["not_cached"] == 1
    assert not raw.exists(cache.redis_key("u"))


# --- Redis stops -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throw-away redis-server on a free port; the test may kill it."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    probe = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    probe.close()
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_redis_stopped_mid_test_falls_back_to_l1_without_errors(
    monkeypatch: pytest.MonkeyPatch, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, proc = private_redis
    _point_at(monkeypatch, url, f"test-cache-{uuid.uuid4().hex[:12]}")
    cache = new_cache()
    direct = redis.Redis.from_url(url)
    assert cache.get_or_compute("before", Counter(ROWS), ttl=60) == ROWS
    assert direct.exists(cache.redis_key("before"))
    assert RedisHealth.last_error is None
    direct.close()

    proc.kill()
    proc.wait()

    compute = Counter({"after": True})
    started = time.monotonic()
    assert cache.get_or_compute("after", compute, ttl=60) == {"after": True}  # no error
    first_call = time.monotonic() - started
    assert RedisHealth.last_error == "ConnectionError"
    assert cache.redis_key("after") in cache.l1  # L1 still works

    started = time.monotonic()
    assert cache.get_or_compute("after", compute, ttl=60) == {"after": True}  # L1 hit
    assert cache.get_or_compute("before", Counter("never"), ttl=60) == ROWS  # L1 hit
    assert cache.set("plain", [1, 2], ttl=60) is True  # L1 took it, L2 skipped
    assert cache.get("plain") == [1, 2]
    cache.l1.clear()
    assert cache.get("plain", default="gone") == "gone"  # L2 miss, not an error
    assert cache.get_or_compute("after", compute, ttl=60) == {"after": True}
    later_calls = time.monotonic() - started
    assert compute.calls == 2
    stats = cache.stats()
    assert stats["l2_errors"] >= 1 and stats["l2_skipped"] >= 1
    assert later_calls < 0.5, "after one failure Redis is skipped for the back-off period"
    assert first_call < 15


# --- single-flight in one process ----------------------------------------------------------
def test_fifty_threads_on_a_cold_key_compute_once(namespace: str, raw: redis.Redis) -> None:
    flight = SingleFlight()
    cache = new_cache(flight=flight)
    counter = f"{namespace}:computes"

    def compute() -> dict[str, Any]:
        raw.incr(counter)
        time.sleep(0.5)
        return ROWS

    barrier = threading.Barrier(50)
    results: list[Any] = []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait()
        value = cache.get_or_compute("hot", compute, ttl=60)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=ask) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(raw.get(counter) or 0) == 1
    assert results == [ROWS] * 50
    stats = cache.stats()
    assert stats["computes"] == 1
    assert stats["singleflight_waits"] + stats["l1_hits"] + stats["l2_hits"] == 49
    assert flight.in_flight() == 0
    assert not raw.exists(cache.redis_key("hot") + ":lease")


def test_leader_exception_reaches_in_process_followers(namespace: str, raw: redis.Redis) -> None:
    flight = SingleFlight()
    cache = new_cache(flight=flight)
    calls = Counter(None)

    def boom() -> Any:
        calls()
        time.sleep(0.4)
        raise RuntimeError("warehouse fell over")

    barrier = threading.Barrier(10)
    errors: list[str] = []

    def ask() -> None:
        barrier.wait()
        try:
            cache.get_or_compute("crash", boom, ttl=60)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls.calls == 1
    assert errors == ["warehouse fell over"] * 10
    assert flight.in_flight() == 0
    assert not raw.exists(cache.redis_key("crash"))
    assert not raw.exists(cache.redis_key("crash") + ":lease")
    assert cache.get_or_compute("crash", lambda: "recovered", ttl=60) == "recovered"


# --- single-flight across processes --------------------------------------------------------
CHILD = r"""
import json, os, sys, time
from mesdash.core.cache import LayeredCache
from mesdash.core.redis_client import get_redis, key

name, mode, delay, lease = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
client = get_redis()
client.incr(key("ready"))
deadline = time.monotonic() + 20
while int(client.get(key("ready")) or 0) < int(os.environ["CACHE_TEST_PARTIES"]):
    if time.monotonic() > deadline:
        sys.exit("barrier timeout")
    time.sleep(0.01)

def compute():
    client.incr(key("computes"))
    time.sleep(delay)
    if mode == "exit":
        os._exit(3)
    if mode == "raise":
        raise RuntimeError("leader failed")
    return {"computed_by": name, "rows": [1, 2, 3]}

cache = LayeredCache("cache", lease_seconds=lease, follower_wait_seconds=15)
try:
    value = cache.get_or_compute("cold", compute, ttl=60)
except RuntimeError as exc:
    value = {"error": str(exc)}
print(json.dumps({"value": value, "stats": cache.stats()}))
"""


def _spawn(
    namespace: str, redis_url: str, name: str, mode: str, delay: float, lease: float, parties: int
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MESDASH_ENV": "testing",
        "MESDASH_REDIS_URL": redis_url,
        "MESDASH_CACHE_NAMESPACE": namespace,
        "CACHE_TEST_PARTIES": str(parties),
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, name, mode, str(delay), str(lease)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return dict(json.loads(out))


def test_two_processes_on_a_cold_key_compute_once(namespace: str, redis_url: str, raw: redis.Redis) -> None:
    # a 0.6 s lease under a 1.5 s compute: the leader must renew it, or the follower computes too
    procs = [_spawn(namespace, redis_url, name, "ok", 1.5, 0.6, 2) for name in ("p1", "p2")]
    first, second = (_result(p) for p in procs)
    assert int(raw.get(f"{namespace}:computes") or 0) == 1
    leader, follower = (first, second) if first["stats"]["computes"] else (second, first)
    assert leader["stats"]["computes"] == 1
    assert follower["stats"]["computes"] == 0
    assert follower["stats"]["lease_waits"] == 1 and follower["stats"]["singleflight_waits"] == 1
    assert follower["value"] == leader["value"]
    assert leader["value"]["computed_by"] in ("p1", "p2")
    assert 59_000 < raw.pttl(f"{namespace}:cache:cold") <= 60_000
    assert not raw.exists(f"{namespace}:cache:cold:lease")


def _wait_for_lease(raw: redis.Redis, lease_key: str) -> None:
    deadline = time.monotonic() + 20
    while not raw.exists(lease_key):
        assert time.monotonic() < deadline, "leader never took the lease"
        time.sleep(0.01)


@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_cross_process_follower_computes_itself_when_the_leader_crashes(
    mode: str, namespace: str, redis_url: str, raw: redis.Redis
) -> None:
    """raise: the leader releases its lease at once; exit: the lease expires (no renewal)."""
    lease_seconds = 1.0
    leader = _spawn(namespace, redis_url, "leader", mode, 1.0, lease_seconds, 1)
    cache = new_cache(follower_wait_seconds=15)
    lease_key = cache.redis_key("cold") + ":lease"
    _wait_for_lease(raw, lease_key)

    compute = Counter({"computed_by": "follower"})
    started = time.monotonic()
    assert cache.get_or_compute("cold", compute, ttl=60) == {"computed_by": "follower"}
    waited = time.monotonic() - started
    out, err = leader.communicate(timeout=30)
    if mode == "raise":
        assert leader.returncode == 0 and json.loads(out)["value"] == {"error": "leader failed"}
    else:
        assert leader.returncode == 3, err
        assert waited >= 1.0 + lease_seconds * 0.5  # compute time, then the lease ran out
    assert compute.calls == 1
    assert int(raw.get(f"{namespace}:computes") or 0) == 1  # the leader's (crashed) compute
    stats = cache.stats()
    assert stats["lease_waits"] == 1 and stats["lease_timeouts"] == 0 and stats["computes"] == 1
    assert waited < 10
    assert cache.get("cold") == {"computed_by": "follower"}  # the follower's result is cached
    assert 59_000 < raw.pttl(cache.redis_key("cold")) <= 60_000


def test_follower_wait_is_bounded(namespace: str, raw: redis.Redis) -> None:
    """A lease held longer than the follower will wait: it computes itself after the bound."""
    cache = new_cache(follower_wait_seconds=0.6, follower_poll_seconds=0.05)
    lease_key = cache.redis_key("stuck") + ":lease"
    raw.set(lease_key, "someone-else", px=30_000)
    started = time.monotonic()
    assert cache.get_or_compute("stuck", lambda: "mine", ttl=60) == "mine"
    assert 0.6 <= time.monotonic() - started < 3
    stats = cache.stats()
    assert stats["lease_timeouts"] == 1 and stats["computes"] == 1
    assert raw.get(lease_key) == b"someone-else"  # not ours: left alone
    assert raw.get(cache.redis_key("stuck"))[:1] == b"J"  # type: ignore[index]


def test_redis_hung_costs_one_timeout_then_recovers(
    monkeypatch: pytest.MonkeyPatch, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """A paused (hung) Redis: one socket timeout, L1 only while backing off, then L2 again."""
    url, proc = private_redis
    _point_at(monkeypatch, url, f"test-cache-{uuid.uuid4().hex[:12]}")
    cache = new_cache(l2=L2(backoff_seconds=0.5))
    compute = Counter([1, 2, 3])
    proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert cache.get_or_compute("k", compute, ttl=60) == [1, 2, 3]
        assert time.monotonic() - started < 6  # one 2 s socket timeout, not one per operation
        assert RedisHealth.last_error == "TimeoutError"
        started = time.monotonic()
        assert cache.get_or_compute("k", compute, ttl=60) == [1, 2, 3]  # L1
        assert cache.get("other", default=None) is None  # L2 skipped while backing off
        assert time.monotonic() - started < 0.2
    finally:
        proc.send_signal(signal.SIGCONT)
    time.sleep(0.6)  # back-off over
    assert cache.set("k", [4], ttl=60)
    assert RedisHealth.last_error is None  # health clears on the first success
    direct = redis.Redis.from_url(url)
    assert direct.get(cache.redis_key("k")) is not None
    direct.close()
    assert compute.calls == 1


# --- a Redis outage with an append-only file: leases outlive their leaders ------------------
@pytest.mark.timeout(90)
def test_lease_of_a_leader_that_failed_during_a_redis_outage_ends_after_the_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis stops while a leader computes; its result and its lease delete never arrive.
    Redis comes back from its append-only file with the lease (and its expiry): a follower in
    another process waits only until that lease ends — not ``follower_wait_seconds`` (60 s
    here) — and then computes. While Redis was away the leader kept renewing (it lost
    nothing by one failed renewal)."""
    from faults import private_redis as private_server

    with private_server(appendonly=True) as server:
        _point_at(monkeypatch, server.url, f"test-cache-{uuid.uuid4().hex[:12]}")
        leader = new_cache(lease_seconds=3.0, l2=L2(backoff_seconds=0.2))
        follower = new_cache(lease_seconds=3.0, follower_wait_seconds=60, l2=L2(backoff_seconds=0.2))
        lease_key = leader.redis_key("k") + ":lease"
        direct = redis.Redis.from_url(server.url)
        go = threading.Event()

        def compute() -> str:
            go.wait(20)
            return "leader"

        led: list[str] = []
        thread = threading.Thread(target=lambda: led.append(leader.get_or_compute("k", compute, ttl=60)))
        thread.start()
        _wait_for_lease(direct, lease_key)
        server.stop()
        time.sleep(1.2)  # a renewal (every lease/3 = 1 s) fails meanwhile
        server.start()  # the lease is back from the append-only file
        time.sleep(3.5)  # longer than the lease: still there only because the leader renewed
        assert 0 < direct.pttl(lease_key) <= 3000  # ... through the outage
        server.stop()
        go.set()
        thread.join(20)
        assert led == ["leader"]  # its caller got the value; Redis got neither it nor the delete
        server.start()
        assert direct.exists(lease_key) and not direct.exists(leader.redis_key("k"))
        reset_l2_backoff()

        answers: list[str] = []
        other = threading.Thread(target=lambda: answers.append(follower.get_or_compute("k", lambda: "follower", ttl=60)))
        other.start()
        other.join(20)  # the follower's caller's deadline
        assert not other.is_alive(), "the follower still waits on the dead leader's lease"
        assert answers == ["follower"]
        stats = follower.stats()
        assert stats["lease_waits"] == 1 and stats["lease_timeouts"] == 0 and stats["computes"] == 1
        direct.close()
