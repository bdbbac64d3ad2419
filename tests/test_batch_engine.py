"""BatchQueryEngine: decomposition, hashing, execution rules, progress, merge and spill.

Every execution test runs twice: against the shared Redis (unique namespace, deleted
after) and without Redis (chunks in the L1, progress in a JSON sidecar, file locks).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesdash.core.batch import (
    Chunk,
    ChunkColumnsMismatch,
    QuerySpool,
    chunk_ttl_for,
    decompose_by_ids,
    decompose_by_time_range,
    effective_parallelism,
    execute_plan,
    iterate_chunks,
    merge_chunks,
    query_hash,
    read_progress,
)
from mesdash.core.batch.engine import PlanResult
from mesdash.core.batch.plan import plan_params
from mesdash.core.batch.store import ChunkStore
from mesdash.core.redis_client import get_redis, key
from mesdash.core.resilience.bulkhead import Bulkhead
from mesdash.core.resilience.errors import CacheExpired, DBBusy, DBUnavailable, QueryTimeout
from mesdash.settings import get_settings, reset_settings
from test_batch_support import use_backend

NOW = datetime(2026, 6, 30, 10, 0)  # factory day 2026-06-30


@pytest.fixture(params=["redis", "local"])
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[str]:
    gen = use_backend(monkeypatch, request.param, redis_url, tmp_path / "spool")
    next(gen)
    yield str(request.param)
    next(gen, None)


def rows_for(chunk: Chunk, n: int = 3) -> pa.Table:
    return pa.table({"CHUNK": [chunk.index] * n, "SEQ": list(range(n)), "LABEL": [chunk.label] * n})


def simple_fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
    return rows_for(chunk)


def month_chunks(n: int = 5) -> list[Chunk]:
    return decompose_by_time_range(date(2025, 1, 1), date(2025, 1, 1) + timedelta(days=n * 10 - 1), 10)


# ------------------------------------------------------------------ decomposition ------
def test_365_days_give_eleven_full_chunks_and_a_short_one() -> None:
    chunks = decompose_by_time_range(date(2025, 1, 1), date(2025, 12, 31))
    assert len(chunks) == 12
    assert [(c.end - c.start).days + 1 for c in chunks] == [31] * 11 + [24]  # type: ignore[operator]
    assert chunks[0].start == date(2025, 1, 1) and chunks[-1].end == date(2025, 12, 31)
    assert chunks[1].start == date(2025, 2, 1) and chunks[0].end == date(2025, 1, 31)
    assert [c.index for c in chunks] == list(range(12))


def test_one_day_and_leap_day_boundaries() -> None:
    [one] = decompose_by_time_range(date(2024, 2, 29), date(2024, 2, 29))
    assert (one.start, one.end) == (date(2024, 2, 29), date(2024, 2, 29))
    assert one.bounds() == (datetime(2024, 2, 29, 7, 30), datetime(2024, 3, 1, 7, 30))
    leap = decompose_by_time_range(date(2024, 2, 1), date(2024, 3, 31), 29)
    assert [(c.start, c.end) for c in leap] == [
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 29)),
        (date(2024, 3, 30), date(2024, 3, 31)),
    ]
    plain = decompose_by_time_range(date(2025, 2, 1), date(2025, 3, 31), 28)
    assert plain[0].end == date(2025, 2, 28) and plain[1].start == date(2025, 3, 1)
    assert decompose_by_time_range(date(2025, 1, 1), date(2025, 1, 31)) == [
        Chunk(0, date(2025, 1, 1), date(2025, 1, 31))
    ]
    with pytest.raises(ValueError):
        decompose_by_time_range(date(2025, 1, 2), date(2025, 1, 1))
    with pytest.raises(ValueError):
        decompose_by_time_range(date(2025, 1, 1), date(2025, 1, 2), 0)


@given(
    start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    days=st.integers(0, 800),
    grain=st.integers(1, 120),
)
def test_time_chunks_have_no_gap_and_no_overlap(start: date, days: int, grain: int) -> None:
    end = start + timedelta(days=days)
    chunks = decompose_by_time_range(start, end, grain)
    assert chunks[0].start == start and chunks[-1].end == end
    for a, b in itertools.pairwise(chunks):
        assert b.start == a.end + timedelta(days=1)  # type: ignore[operator]
    sizes = [(c.end - c.start).days + 1 for c in chunks]  # type: ignore[operator]
    assert all(s == grain for s in sizes[:-1]) and 1 <= sizes[-1] <= grain
    assert sum(sizes) == days + 1


def test_decompose_by_ids() -> None:
    ids = [f"{i:016x}" for i in range(2500)]
    chunks = decompose_by_ids(ids)
    assert [len(c.ids) for c in chunks] == [1000, 1000, 500]
    assert chunks[2].ids[-1] == ids[-1] and [c.index for c in chunks] == [0, 1, 2]
    assert [len(c.ids) for c in decompose_by_ids(ids[:500])] == [500]
    assert decompose_by_ids([" b ", "a", "b", "", "c"], 2) == [Chunk(0, ids=("b", "a")), Chunk(1, ids=("c",))]
    assert decompose_by_ids([]) == []
    assert chunks[1].label == "ids[1]:1000"


def test_query_hash_is_stable_under_reordering() -> None:
    a = query_hash({"start": "2025-01-01", "packages": ["QFN", "SOT"], "reasons": ["250_VF", "101_X"]})
    b = query_hash({"reasons": ["101_X", "250_VF"], "packages": ["SOT", "QFN"], "start": "2025-01-01"})
    assert a == b and len(a) == 16
    assert a != query_hash(
        {"start": "2025-01-02", "packages": ["QFN", "SOT"], "reasons": ["250_VF", "101_X"]}
    )
    # ids inside a chunk are a set; the plan's default hash does not depend on their order
    p1 = [Chunk(0, ids=("a", "b")), Chunk(1, ids=("c",))]
    p2 = [Chunk(0, ids=("b", "a")), Chunk(1, ids=("c",))]
    assert query_hash(plan_params(p1), ordered=("chunks",)) == query_hash(
        plan_params(p2), ordered=("chunks",)
    )


# ------------------------------------------------------------------ execution ----------
def test_plan_stores_chunks_and_merges(backend: str) -> None:
    chunks = month_chunks(3)
    result = execute_plan(chunks, simple_fn, query_hash="h1", cache_prefix="t", now=lambda: NOW)
    assert result.status == "completed" and result.executed == [0, 1, 2] and result.skipped == []
    assert result.quality == {"status": "complete", "reasons": [], "observed_rows": 9, "failed_ranges": []}
    merged = merge_chunks("t", "h1")
    assert not merged.spilled and merged.rows == 9
    assert (
        merged.table is not None and merged.table.column("CHUNK").to_pylist() == [0] * 3 + [1] * 3 + [2] * 3
    )
    meta = read_progress("t", "h1")
    assert meta is not None
    assert {k: meta[k] for k in ("total", "completed", "failed", "pct", "status", "has_partial_failure")} == {
        "total": 3,
        "completed": 3,
        "failed": 0,
        "pct": 100,
        "status": "completed",
        "has_partial_failure": False,
    }
    assert meta["failed_ranges"] == []


def test_redis_keys_follow_the_contract(backend: str) -> None:
    execute_plan(month_chunks(2), simple_fn, query_hash="abc", cache_prefix="reject", now=lambda: NOW)
    client = get_redis()
    ns = get_settings().namespace
    if backend == "redis":
        assert client is not None
        assert client.type(f"{ns}:batch:reject:abc:chunk:1") == b"string"
        assert client.type(f"{ns}:batch:reject:abc:meta") == b"hash"
        assert key("batch", "reject", "abc", "meta") == f"{ns}:batch:reject:abc:meta"
    else:
        assert client is None
        sidecar = get_settings().spool_path / "batch" / ns / "reject-abc.meta.json"
        assert sidecar.exists() and '"total": 2' in sidecar.read_text()


def test_partial_cache_hit_runs_only_missing_chunks(backend: str) -> None:
    chunks = month_chunks(5)
    store = ChunkStore("p", "h2")
    for i in (1, 3):
        store.put(i, rows_for(chunks[i]), 600)
    calls: list[int] = []

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        calls.append(chunk.index)
        return rows_for(chunk)

    result = execute_plan(chunks, fn, query_hash="h2", cache_prefix="p", now=lambda: NOW)
    assert calls == [0, 2, 4] and result.skipped == [1, 3]
    assert merge_chunks("p", "h2").rows == 15
    calls.clear()
    execute_plan(chunks, fn, query_hash="h2", cache_prefix="p", now=lambda: NOW)
    assert calls == []
    execute_plan(chunks, fn, query_hash="h2", cache_prefix="p", skip_cached=False, now=lambda: NOW)
    assert calls == [0, 1, 2, 3, 4]


def test_memory_guard_discards_an_oversized_chunk(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_CHUNK_MAX_MEMORY_MB", "1")
    reset_settings()
    chunks = month_chunks(3)

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        if chunk.index == 1:
            return pa.table({"CHUNK": [1] * 300_000, "SEQ": list(range(300_000)), "LABEL": ["x"] * 300_000})
        return rows_for(chunk)

    result = execute_plan(chunks, fn, query_hash="h3", cache_prefix="m", now=lambda: NOW)
    assert result.failed == [1] and result.failed_ranges == ["2025-01-11..2025-01-20"]
    assert result.status == "partial" and result.quality["status"] == "partial"
    assert not ChunkStore("m", "h3").has(1) and ChunkStore("m", "h3").has(2)
    meta = read_progress("m", "h3")
    assert meta is not None and meta["has_partial_failure"] is True and meta["failed"] == 1
    assert meta["failed_ranges"] == ["2025-01-11..2025-01-20"] and meta["status"] == "partial"
    merged = merge_chunks("m", "h3")
    assert merged.rows == 6 and merged.quality["status"] == "partial"


def test_failure_isolation_and_one_retry_of_transient_errors(backend: str) -> None:
    chunks = month_chunks(5)
    calls: dict[int, int] = {}
    plan: dict[int, list[Exception]] = {
        1: [DBUnavailable("down")],
        2: [QueryTimeout("slow"), QueryTimeout("slow")],
        3: [ValueError("bad")],
        4: [DBBusy("busy")],
    }

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        calls[chunk.index] = calls.get(chunk.index, 0) + 1
        errors = plan.get(chunk.index, [])
        if errors:
            raise errors.pop(0)
        return rows_for(chunk)

    result = execute_plan(chunks, fn, query_hash="h4", cache_prefix="f", now=lambda: NOW)
    assert calls == {0: 1, 1: 2, 2: 2, 3: 1, 4: 2}
    assert result.failed == [2, 3]
    assert result.failed_ranges == ["2025-01-21..2025-01-30", "2025-01-31..2025-02-09"]
    assert merge_chunks("f", "h4").rows == 9
    # a rerun resumes: only the failed chunks run again
    calls.clear()
    result = execute_plan(chunks, fn, query_hash="h4", cache_prefix="f", now=lambda: NOW)
    assert calls == {2: 1, 3: 1} and result.status == "completed"
    assert merge_chunks("f", "h4").rows == 15


def test_progress_is_published_after_every_chunk(backend: str) -> None:
    chunks = month_chunks(4)
    seen: list[tuple[int, int, str]] = []

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        meta = read_progress("g", "h5")
        assert meta is not None
        seen.append((meta["completed"], meta["pct"], meta["status"]))
        if chunk.index == 2:
            raise ValueError("boom")
        return rows_for(chunk)

    execute_plan(chunks, fn, query_hash="h5", cache_prefix="g", now=lambda: NOW)
    assert seen == [(0, 0, "running"), (1, 25, "running"), (2, 50, "running"), (2, 75, "running")]
    meta = read_progress("g", "h5")
    assert meta is not None and (meta["completed"], meta["failed"], meta["pct"]) == (3, 1, 100)
    assert meta["status"] == "partial"


def test_parallel_is_capped_by_free_slow_query_slots(backend: str) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return rows_for(chunk)

    bulkhead = Bulkhead(3, 1.0)
    result = execute_plan(
        month_chunks(6), fn, parallel=4, query_hash="h6", cache_prefix="c", bulkhead=bulkhead
    )
    assert peak == 2 and result.status == "completed"
    merged = merge_chunks("c", "h6").table
    assert merged is not None
    assert merged.column("CHUNK").to_pylist() == [i for i in range(6) for _ in range(3)]
    assert effective_parallelism(4, Bulkhead(1, 1.0)) == 1
    assert effective_parallelism(1, bulkhead) == 1
    assert effective_parallelism(8, Bulkhead(10, 1.0)) == 8
    with bulkhead.slot():
        assert effective_parallelism(4, bulkhead) == 1


def test_max_rows_reaches_query_fn_and_marks_truncation(backend: str) -> None:
    got: list[int | None] = []

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        got.append(max_rows)
        return rows_for(chunk, 2 if chunk.index == 0 else 1)

    result = execute_plan(month_chunks(2), fn, query_hash="h7", cache_prefix="r", max_rows_per_chunk=2)
    assert got == [2, 2]
    assert result.truncated_ranges == ["2025-01-01..2025-01-10"]
    assert result.quality["status"] == "truncated" and result.quality["reasons"] == ["row_limit"]
    assert merge_chunks("r", "h7").quality["status"] == "truncated"
    again = execute_plan(month_chunks(2), fn, query_hash="h7", cache_prefix="r", max_rows_per_chunk=2)
    assert again.skipped == [0, 1] and again.truncated_ranges == ["2025-01-01..2025-01-10"]
    assert merge_chunks("r", "h7").quality["status"] == "truncated"


def test_merge_and_spill_give_identical_rows(backend: str, tmp_path: Path) -> None:
    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        n = 4 + chunk.index
        return pa.table(
            {
                "TXNDATE": [
                    datetime(2025, 1, 1, 8) + timedelta(hours=chunk.index * 24 + i) for i in range(n)
                ],
                "QTY": [float(i) / 3 for i in range(n)],
                "ID": [f"{chunk.index:02d}-{i}" for i in range(n)],
            }
        )

    execute_plan(month_chunks(5), fn, query_hash="h8", cache_prefix="s")
    memory = merge_chunks("s", "h8")
    assert memory.table is not None and memory.rows == 30
    spool = QuerySpool()
    spilled = merge_chunks("s", "h8", spool=spool, spool_namespace="reject", query_id="q8", max_total_rows=5)
    assert spilled.spilled and spilled.table is None and spilled.rows == 30
    assert spilled.spool is not None and Path(spilled.spool.path) == spool.path_for("reject", "q8")
    assert spool.read("reject", "q8") == memory.table
    by_mb = merge_chunks("s", "h8", spool=spool, query_id="q8b", max_result_mb=0.0001)
    assert by_mb.spilled and spool.read("batch", "q8b") == memory.table
    assert list(iterate_chunks("s", "h8"))[4].num_rows == 8


def test_chunks_with_different_columns_are_an_error(backend: str) -> None:
    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        table = rows_for(chunk)
        if chunk.index == 1:
            return table.select(["LABEL", "SEQ", "CHUNK"])  # same set, other order: fine
        if chunk.index == 2:
            return table.append_column("EXTRA", pa.array([1, 2, 3]))
        return table

    execute_plan(month_chunks(3), fn, query_hash="h9", cache_prefix="x")
    chunks = iterate_chunks("x", "h9")
    assert next(chunks).column_names == ["CHUNK", "SEQ", "LABEL"]
    assert next(chunks).column_names == ["CHUNK", "SEQ", "LABEL"]
    with pytest.raises(ChunkColumnsMismatch):
        next(chunks)
    with pytest.raises(ChunkColumnsMismatch):
        merge_chunks("x", "h9")
    with pytest.raises(ChunkColumnsMismatch):
        merge_chunks("x", "h9", spool=QuerySpool(), max_total_rows=1)
    assert not list((get_settings().spool_path / "query").rglob("*.parquet"))


def test_expired_chunk_or_plan_is_cache_expired(backend: str) -> None:
    with pytest.raises(CacheExpired):
        merge_chunks("e", "never")
    execute_plan(month_chunks(2), simple_fn, query_hash="h10", cache_prefix="e")
    store = ChunkStore("e", "h10")
    if backend == "redis":
        get_redis().delete(store.chunk_key(1))  # type: ignore[union-attr]
    else:
        from mesdash.core.cache import get_l1

        get_l1().delete(store.chunk_key(1))
    with pytest.raises(CacheExpired):
        merge_chunks("e", "h10")


def test_closed_chunks_live_long_and_todays_chunk_short(backend: str) -> None:
    settings = get_settings()
    chunks = decompose_by_time_range(date(2026, 6, 1), date(2026, 6, 30), 10)
    today = date(2026, 6, 30)
    assert [chunk_ttl_for(c, today, 900) for c in chunks] == [
        settings.batch_closed_chunk_ttl,
        settings.batch_closed_chunk_ttl,
        settings.batch_open_chunk_ttl,
    ]
    assert chunk_ttl_for(chunks[2], today, 60) == 60  # never longer than asked either
    assert chunk_ttl_for(Chunk(0, ids=("a",)), today, 900) == 900
    # 07:00 on 1 July still belongs to factory day 30 June: the last chunk is still open
    execute_plan(
        chunks, simple_fn, query_hash="h11", cache_prefix="ttl", now=lambda: datetime(2026, 7, 1, 7, 0)
    )
    store = ChunkStore("ttl", "h11")
    if backend == "redis":
        closed, open_ = store.ttl_ms(0), store.ttl_ms(2)
        assert closed is not None and open_ is not None
        assert (
            settings.batch_closed_chunk_ttl * 1000 - 10_000 < closed <= settings.batch_closed_chunk_ttl * 1000
        )
        assert 0 < open_ <= settings.batch_open_chunk_ttl * 1000
    # at 07:30 on 1 July the whole range is closed
    assert chunk_ttl_for(chunks[2], date(2026, 7, 1), 900) == settings.batch_closed_chunk_ttl


def test_concurrent_identical_plans_run_each_chunk_once(backend: str) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        with lock:
            calls.append(chunk.index)
        time.sleep(0.02)
        return rows_for(chunk)

    chunks = month_chunks(4)
    threads = [
        threading.Thread(
            target=execute_plan, args=(chunks, fn), kwargs={"query_hash": "h12", "cache_prefix": "l"}
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == [0, 1, 2, 3]


def test_iterate_chunks_is_lazy(backend: str) -> None:
    execute_plan(month_chunks(3), simple_fn, query_hash="h13", cache_prefix="lazy")
    chunks = iterate_chunks("lazy", "h13")
    first = next(chunks)
    assert first.column("CHUNK").to_pylist() == [0, 0, 0]
    store = ChunkStore("lazy", "h13")
    if backend == "redis":
        get_redis().delete(store.chunk_key(2))  # type: ignore[union-attr]
    else:
        from mesdash.core.cache import get_l1

        get_l1().delete(store.chunk_key(2))
    assert next(chunks).column("CHUNK").to_pylist() == [1, 1, 1]  # read only now
    with pytest.raises(CacheExpired):
        next(chunks)


def test_a_chunk_expired_mid_iteration_is_recomputed_when_the_caller_asks(backend: str) -> None:
    chunks_planned = month_chunks(3)
    execute_plan(chunks_planned, simple_fn, query_hash="h13r", cache_prefix="lazy")
    store = ChunkStore("lazy", "h13r")
    recomputed: list[int] = []

    def again(index: int) -> pa.Table:
        recomputed.append(index)
        return simple_fn(chunks_planned[index], None)

    chunks = iterate_chunks("lazy", "h13r", recompute=again)
    assert next(chunks).column("CHUNK").to_pylist() == [0, 0, 0]
    if backend == "redis":
        get_redis().delete(store.chunk_key(1))  # type: ignore[union-attr]
    else:
        from mesdash.core.cache import get_l1

        get_l1().delete(store.chunk_key(1))
    assert [t.column("CHUNK").to_pylist() for t in chunks] == [[1, 1, 1], [2, 2, 2]]
    assert recomputed == [1]
    assert store.get(1) is None  # computed for this reader, not cached again


def test_chunk_the_local_store_cannot_hold_is_failed(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("CACHE_L1_MAX_BYTES", "20000")
    gen = use_backend(monkeypatch, "local", redis_url, tmp_path / "spool")
    next(gen)

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        return rows_for(chunk, 5000 if chunk.index == 1 else 3)

    result = execute_plan(month_chunks(3), fn, query_hash="h14", cache_prefix="big")
    assert result.failed == [1] and result.status == "partial"
    assert merge_chunks("big", "h14").rows == 6
    next(gen, None)


# ------------------------------------------------------------- TTLs and the plan lock --
def test_chunk_ttl_is_a_setting_and_meta_lives_as_long_as_the_longest_chunk(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Id chunks live ``BATCH_CHUNK_TTL``; the progress record no longer than the longest-lived
    chunk of its plan (it lived 900 s beside 60 s chunks)."""
    monkeypatch.setenv("BATCH_CHUNK_TTL", "120")
    monkeypatch.setenv("BATCH_CLOSED_CHUNK_TTL", "60")
    reset_settings()
    assert get_settings().batch_chunk_ttl == 120
    execute_plan(decompose_by_ids(["a", "b", "c"], 2), simple_fn, query_hash="h20", cache_prefix="ids")
    execute_plan(month_chunks(2), simple_fn, query_hash="h21", cache_prefix="days", now=lambda: NOW)
    if backend == "redis":
        client = get_redis()
        assert client is not None
        ids, days = ChunkStore("ids", "h20"), ChunkStore("days", "h21")
        assert 110_000 < (ids.ttl_ms(0) or 0) <= 120_000 and 110_000 < (ids.ttl_ms(1) or 0) <= 120_000
        assert 110_000 < client.pttl(ids.meta_key) <= 120_000
        assert 50_000 < (days.ttl_ms(1) or 0) <= 60_000  # closed time chunks
        assert 50_000 < client.pttl(days.meta_key) <= 60_000
    else:
        assert read_progress("ids", "h20") is not None and read_progress("days", "h21") is not None


@pytest.mark.timeout(60)
def test_a_dead_holders_plan_lock_holds_a_plan_only_until_its_lease_ends(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> None:
    """A run whose lock delete never arrived (Redis down at its end, or the process killed)
    leaves its lock behind: the next run of the plan waits for that lease to end
    (``CACHE_LEASE_SECONDS``), not for ``CACHE_FOLLOWER_WAIT_SECONDS`` (600 s here) — the lock
    used to live twice ``DB_SLOW_CALL_TIMEOUT_MS`` (600 s), and so did the wait."""
    from mesdash.core.batch import store as store_module
    from mesdash.core.cache.singleflight import RedisLease

    monkeypatch.setenv("CACHE_FOLLOWER_WAIT_SECONDS", "600")
    gen = use_backend(monkeypatch, "redis", redis_url, tmp_path / "spool")
    next(gen)
    client = get_redis()
    assert client is not None
    lock = key("batch", "dead", "h22", "lock")

    class LostDelete(RedisLease):
        def release(self) -> None:  # renewal stops, the delete never reaches Redis
            self._stop.set()

    monkeypatch.setattr(store_module, "RedisLease", LostDelete)
    execute_plan(month_chunks(2), simple_fn, query_hash="h22", cache_prefix="dead")
    dead_token = client.get(lock)
    assert dead_token is not None and 0 < client.pttl(lock) <= get_settings().cache_lease_seconds * 1000
    monkeypatch.setattr(store_module, "RedisLease", RedisLease)

    seen: list[bytes | None] = []

    def fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        seen.append(client.get(lock))
        return rows_for(chunk)

    done: list[PlanResult] = []
    run = threading.Thread(
        target=lambda: done.append(
            execute_plan(month_chunks(2), fn, query_hash="h22", cache_prefix="dead", skip_cached=False)
        )
    )
    run.start()
    run.join(20)  # the caller's deadline
    assert not run.is_alive(), "the plan still waits on a dead holder's lock"
    assert done[0].status == "completed" and done[0].executed == [0, 1]
    assert seen and all(v not in (None, dead_token) for v in seen)  # ran under its own lease
    assert not client.exists(lock)  # and deleted it at the end
    next(gen, None)


@pytest.mark.timeout(60)
def test_a_live_holder_keeps_its_plan_lock_past_the_lease_and_waiters_wait(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> None:
    """The holder's thread renews its short lease: a second run waits while the first runs
    (longer than several leases), then finds its chunks cached."""
    monkeypatch.setenv("CACHE_LEASE_SECONDS", "0.3")
    gen = use_backend(monkeypatch, "redis", redis_url, tmp_path / "spool")
    next(gen)
    release = threading.Event()
    calls: list[int] = []

    def slow(chunk: Chunk, max_rows: int | None) -> pa.Table:
        calls.append(chunk.index)
        release.wait(20)
        return rows_for(chunk)

    chunks = month_chunks(1)
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(execute_plan(chunks, slow, query_hash="h24", cache_prefix="live")))
    first.start()
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [0]
    second = threading.Thread(target=lambda: results.append(execute_plan(chunks, slow, query_hash="h24", cache_prefix="live")))
    second.start()
    second.join(1.5)  # five leases
    assert second.is_alive() and calls == [0]  # still waiting: the lease was renewed
    release.set()
    first.join(20)
    second.join(20)
    assert not first.is_alive() and not second.is_alive()
    assert calls == [0]  # the second run found the chunk cached
    assert sorted(r.skipped for r in results) == [[], [0]]  # type: ignore[attr-defined]
    next(gen, None)
