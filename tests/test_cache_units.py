"""Cache building blocks without Redis: codec, keys, L1 bounds and TTL, in-process single-flight."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import orjson
import pyarrow as pa
import pytest

from mesdash.core.cache import (
    L1Cache,
    LayeredCache,
    SingleFlight,
    all_stats,
    cache_key,
    canonical_json,
    decode,
    encode,
    query_hash,
    to_json_native,
)
from mesdash.core.cache.singleflight import LeaseState, RedisLease


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- codec ---------------------------------------------------------------------------------
def test_json_rows_round_trip_with_iso_datetimes_and_plain_numbers() -> None:
    rows = {
        "C1": [
            {"TXNDATE": datetime(2026, 6, 30, 7, 30, 5), "DAY": date(2026, 6, 30), "QTY": Decimal("25")},
            {"TXNDATE": None, "DAY": None, "QTY": Decimal("2.5"), "N": np.int64(7), "F": np.float64(0.25)},
        ]
    }
    data = encode(rows)
    assert data[:1] == b"J"
    assert decode(data) == {
        "C1": [
            {"TXNDATE": "2026-06-30T07:30:05", "DAY": "2026-06-30", "QTY": 25},
            {"TXNDATE": None, "DAY": None, "QTY": 2.5, "N": 7, "F": 0.25},
        ]
    }
    assert to_json_native(rows) == decode(data)


def test_arrow_table_round_trips_exactly_with_types_and_nulls() -> None:
    table = pa.table(
        {
            "CONTAINERID": pa.array(["C1", "C2", None]),
            "TXNDATE": pa.array(
                [datetime(2026, 1, 1, 7, 30), None, datetime(2026, 1, 2)], pa.timestamp("us")
            ),
            "QTY": pa.array([1, 2, 3], pa.int64()),
        }
    )
    data = encode(table)
    assert data[:1] == b"A"
    back = decode(data)
    assert isinstance(back, pa.Table)
    assert back.schema == table.schema
    assert back.equals(table)
    assert back.column("TXNDATE")[0].as_py() == datetime(2026, 1, 1, 7, 30)


def test_unencodable_and_unknown_tag_raise() -> None:
    with pytest.raises(TypeError):
        encode({"x": object()})
    with pytest.raises(TypeError):
        encode({1: "non-string key"})
    with pytest.raises(ValueError, match="unknown cache value tag"):
        decode(b"Xabc")


# --- keys ----------------------------------------------------------------------------------
def test_query_hash_ignores_order_of_keys_and_id_lists() -> None:
    a = {"container_ids": ["C3", "C1", "C2"], "domain": "history", "opts": {"b": 1, "a": [2, 1]}}
    b = {"opts": {"a": [1, 2], "b": 1}, "domain": "history", "container_ids": ("C2", "C3", "C1")}
    assert query_hash(a) == query_hash(b)
    assert query_hash(a) != query_hash({**a, "container_ids": ["C1", "C2"]})
    expected = hashlib.sha256(canonical_json(a)).hexdigest()[:16]
    assert query_hash(a) == expected and len(expected) == 16
    assert orjson.loads(canonical_json(a)) == {
        "container_ids": ["C1", "C2", "C3"],
        "domain": "history",
        "opts": {"a": [1, 2], "b": 1},
    }


def test_query_hash_normalizes_dates_sets_and_keeps_ordered_params() -> None:
    assert query_hash({"start": date(2026, 1, 1), "ids": {"B", "A"}}) == query_hash(
        {"start": "2026-01-01", "ids": ["A", "B"]}
    )
    sort_ab = {"sort": ["DATE", "LOT"]}
    sort_ba = {"sort": ["LOT", "DATE"]}
    assert query_hash(sort_ab) == query_hash(sort_ba)
    assert query_hash(sort_ab, ordered=["sort"]) != query_hash(sort_ba, ordered=["sort"])
    mixed = {"x": [3, "a", None, 1.5]}
    assert query_hash(mixed) == query_hash({"x": [None, "a", 1.5, 3]})


def test_cache_key_format() -> None:
    params = {"container_ids": ["B", "A"]}
    key = cache_key("evt", "history", params, 3)
    assert key == f"evt:history:v3:{query_hash(params)}"
    assert key == cache_key("evt", "history", {"container_ids": ["A", "B"]}, 3)
    assert cache_key("evt", "holds", params).startswith("evt:holds:v1:")


# --- L1 ------------------------------------------------------------------------------------
def test_l1_entry_bound_evicts_least_recently_used() -> None:
    l1 = L1Cache(max_entries=3, max_bytes=10_000)
    for name in "abc":
        assert l1.set(name, name.encode() * 10, ttl=60)
    assert l1.get("a") == b"a" * 10  # a is now the most recently used
    l1.set("d", b"d" * 10, ttl=60)
    assert l1.get("b") is None
    assert [l1.get(k) is not None for k in "acd"] == [True, True, True]
    stats = l1.stats()
    assert stats["entries"] == 3 and stats["bytes"] == 30 and stats["evictions"] == 1


def test_l1_byte_bound_evicts_and_rejects_oversized_values() -> None:
    l1 = L1Cache(max_entries=100, max_bytes=100)
    l1.set("a", b"x" * 40, ttl=60)
    l1.set("b", b"y" * 40, ttl=60)
    l1.set("c", b"z" * 40, ttl=60)  # 120 bytes > 100: a goes
    assert l1.get("a") is None
    assert l1.get("b") == b"y" * 40 and l1.get("c") == b"z" * 40
    assert l1.stats()["bytes"] == 80
    assert not l1.set("huge", b"h" * 101, ttl=60)
    assert l1.get("huge") is None
    stats = l1.stats()
    assert stats["too_large"] == 1 and stats["bytes"] == 80 and stats["evictions"] == 1
    l1.set("b", b"q" * 90, ttl=60)  # replacing b with a larger value evicts c
    assert l1.get("c") is None and l1.get("b") == b"q" * 90
    assert l1.stats()["bytes"] == 90


def test_l1_ttl_per_entry_with_injected_clock() -> None:
    clock = FakeClock()
    l1 = L1Cache(max_entries=10, max_bytes=1000, timer=clock)
    l1.set("short", b"1", ttl=5)
    l1.set("long", b"2", ttl=60)
    clock.now += 4.9
    assert l1.get("short") == b"1"
    clock.now += 0.2
    assert l1.get("short") is None
    assert l1.get("long") == b"2"
    assert l1.stats()["entries"] == 1
    clock.now += 60
    assert l1.get("long") is None
    assert l1.stats() == {
        "hits": 2,
        "misses": 2,
        "entries": 0,
        "bytes": 0,
        "evictions": 0,
        "too_large": 0,
        "max_entries": 10,
        "max_bytes": 1000,
    }


def test_l1_expired_entries_do_not_count_against_the_entry_bound() -> None:
    clock = FakeClock()
    l1 = L1Cache(max_entries=2, max_bytes=1000, timer=clock)
    l1.set("old1", b"1", ttl=1)
    l1.set("old2", b"2", ttl=1)
    clock.now += 2
    l1.set("new1", b"3", ttl=10)
    l1.set("new2", b"4", ttl=10)
    assert l1.get("new1") == b"3" and l1.get("new2") == b"4"
    assert l1.stats()["evictions"] == 0


def test_l1_is_thread_safe_and_stays_within_bounds() -> None:
    l1 = L1Cache(max_entries=50, max_bytes=2000)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(300):
                key = f"k{(n * 7 + i) % 120}"
                l1.set(key, bytes(10 + i % 50), ttl=30)
                l1.get(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = l1.stats()
    assert not errors
    assert stats["entries"] <= 50 and stats["bytes"] <= 2000
    assert stats["hits"] + stats["misses"] == 16 * 300


# --- single-flight without Redis ---------------------------------------------------------
def test_singleflight_shares_result_and_exception_and_leaks_nothing() -> None:
    flight = SingleFlight()
    gate = threading.Event()
    calls = []

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    results: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(flight.do("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(results) == [(42, False)] + [(42, True)] * 7
    assert flight.in_flight() == 0

    def boom() -> int:
        time.sleep(0.2)
        raise RuntimeError("leader failed")

    errors: list[str] = []

    def call() -> None:
        try:
            flight.do("k", boom)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["leader failed"] * 5
    assert flight.in_flight() == 0


def test_without_redis_only_in_process_single_flight_applies() -> None:
    cache = LayeredCache("cache", l1=L1Cache(100, 100_000), flight=SingleFlight())
    assert RedisLease(cache.l2, "x", 1.0).acquire() is LeaseState.UNAVAILABLE
    calls = []
    barrier = threading.Barrier(20)

    def compute() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.3)
        return {"n": 1}

    results = []

    def ask() -> None:
        barrier.wait()
        results.append(cache.get_or_compute("k", compute, ttl=30))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [{"n": 1}] * 20
    assert cache.get("k") == {"n": 1}
    stats = cache.stats()
    assert stats["computes"] == 1 and stats["l2_errors"] == 0
    assert stats["singleflight_waits"] + stats["l1_hits"] == 20  # 19 waited or hit, then 1 get


def test_all_stats_sums_instances_per_prefix_and_reports_l1() -> None:
    prefix = f"stats-{time.monotonic_ns()}"
    first = LayeredCache(prefix, l1=L1Cache(10, 1000), flight=SingleFlight())
    second = LayeredCache(prefix, l1=L1Cache(10, 1000), flight=SingleFlight())
    first.get_or_compute("a", lambda: 1, ttl=30)
    second.get_or_compute("a", lambda: 2, ttl=30)
    second.get_or_compute("a", lambda: 3, ttl=30)
    totals = all_stats()
    assert {k: totals[prefix][k] for k in ("computes", "misses", "l1_hits")} == {
        "computes": 2,
        "misses": 2,
        "l1_hits": 1,
    }
    assert set(totals["l1"]) >= {"hits", "misses", "entries", "bytes", "evictions"}
