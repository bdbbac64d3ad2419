"""EventFetcher on DuckDB and PostgreSQL: every domain equals an independent direct query,
batches across ids, caching, guards and the streaming paths."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mesdash.core.cache import LayeredCache
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import DBUnavailable
from mesdash.trace.events import DOMAINS, EventFetcher

BATCH = 60  # small id batches so every test crosses batch boundaries


def _all(wh: Warehouse, sql: str) -> list[dict[str, Any]]:
    return wh.read_sql_df_slow(sql).to_dicts()


@pytest.fixture
def lot_ids(tiny_warehouse: Warehouse) -> list[str]:
    """Lots with rejects, holds and jobs among them, more than three id batches."""
    rows = tiny_warehouse.read_sql_df_slow(
        "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' ORDER BY CONTAINERID"
    ).rows
    ids = [r[0] for r in rows]
    assert len(ids) > 3 * BATCH
    return ids


@pytest.fixture
def fetcher(tiny_warehouse: Warehouse) -> Iterator[EventFetcher]:
    yield EventFetcher(tiny_warehouse, cache=LayeredCache("evt-test"), id_batch_size=BATCH)


def _flatten(grouped: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for cid, group in grouped.items():
        assert all(r["CONTAINERID"] == cid for r in group)
        rows.extend(group)
    return rows


def _multiset(rows: list[dict[str, Any]], cols: list[str]) -> Counter[tuple[Any, ...]]:
    def norm(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    return Counter(tuple(norm(r[c]) for c in cols) for r in rows)


def _reference(wh: Warehouse, domain: str, ids: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each domain computed independently: plain table reads plus Python."""
    if domain == "history":
        rows = _all(wh, "SELECT * FROM dwh.DW_MES_LOTWIPHISTORY")
        return [r for r in rows if r["CONTAINERID"] in ids], ["CONTAINERID", "SPECNAME", "EQUIPMENTID", "TRACKINTIMESTAMP", "TRACKINQTY", "TRACKOUTQTY", "MOVEINTIMESTAMP"]
    if domain == "materials":
        rows = _all(wh, "SELECT * FROM dwh.DW_MES_LOTMATERIALSHISTORY")
        return [r for r in rows if r["CONTAINERID"] in ids], ["CONTAINERID", "MATERIALPARTNAME", "MATERIALLOTNAME", "QTYCONSUMED", "TXNDATE"]
    if domain in {"rejects", "downstream_rejects"}:
        rows = _all(wh, "SELECT * FROM dwh.DW_MES_LOTREJECTHISTORY")
        out = []
        for r in rows:
            if r["CONTAINERID"] in ids:
                r["CHARGED_OFF_QTY"] = sum(r[k] or 0 for k in ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY"))
                out.append(r)
        return out, ["CONTAINERID", "LOSSREASONNAME", "HISTORYMAINLINEID", "CHARGED_OFF_QTY", "DEFECTQTY", "TXNDATE"]
    if domain == "holds":
        rows = _all(wh, "SELECT * FROM dwh.DW_MES_HOLDRELEASEHISTORY")
        out = [r for r in rows if r["CONTAINERID"] in ids]
        for r in out:
            r["HOLD_STATUS"] = "HOLD" if r["RELEASETXNDATE"] is None else "RELEASED"
        return out, ["CONTAINERID", "HISTORYMAINLINEID", "HOLDTXNDATE", "HOLD_STATUS"]
    if domain == "jobs":
        rows = _all(wh, "SELECT * FROM dwh.DW_MES_JOB")
        out = []
        for job in rows:
            for cid in set((job["CONTAINERIDS"] or "").split(",")) & ids:
                out.append({**job, "CONTAINERID": cid})
        return out, ["CONTAINERID", "JOBID", "RESOURCEID", "CREATEDATE"]
    assert domain == "upstream_history"
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in _all(wh, "SELECT * FROM dwh.DW_MES_LOTWIPHISTORY"):
        if r["CONTAINERID"] in ids and r["EQUIPMENTID"] and r["TRACKINTIMESTAMP"]:
            k = (r["CONTAINERID"], r["WORKCENTERNAME"], r["EQUIPMENTID"])
            if k not in latest or r["TRACKINTIMESTAMP"] > latest[k]["TRACKINTIMESTAMP"]:
                latest[k] = r
    return list(latest.values()), ["CONTAINERID", "WORKCENTERNAME", "EQUIPMENTID", "TRACKINTIMESTAMP"]


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_domain_equals_direct_query(fetcher: EventFetcher, lot_ids: list[str], domain: str) -> None:
    wh = fetcher.warehouse
    expected, cols = _reference(wh, domain, set(lot_ids))
    assert expected, f"tiny data has no {domain} rows"
    result = fetcher.fetch_events(lot_ids, domain)
    assert result["quality"]["status"] == "complete"
    got = _flatten(result["records_by_cid"])
    assert _multiset(got, cols) == _multiset(expected, cols)
    streamed = [row for grouped in fetcher.fetch_events_iter(lot_ids, domain) for row in _flatten(grouped)]
    assert _multiset(streamed, cols) == _multiset(expected, cols)


def test_derived_columns(fetcher: EventFetcher, lot_ids: list[str]) -> None:
    rejects = _flatten(fetcher.fetch_events(lot_ids, "rejects")["records_by_cid"])
    assert all("WORKCENTER_GROUP" in r for r in rejects)
    assert any(r["WORKCENTER_GROUP"] == "測試" for r in rejects)
    holds = _flatten(fetcher.fetch_events(lot_ids, "holds")["records_by_cid"])
    assert {r["HOLD_STATUS"] for r in holds} == {"HOLD", "RELEASED"}
    released = next(r for r in holds if r["HOLD_STATUS"] == "RELEASED")
    hours = (datetime.fromisoformat(released["RELEASETXNDATE"]) - datetime.fromisoformat(released["HOLDTXNDATE"])).total_seconds() / 3600
    assert released["HOLD_HOURS"] == pytest.approx(hours, abs=0.01)
    history = _flatten(fetcher.fetch_events(lot_ids[:5], "history")["records_by_cid"])
    assert {"PJ_TYPE", "PRODUCTLINENAME", "WAFER_LOT"} <= set(history[0])


def test_jobs_repeat_per_matched_lot(fetcher: EventFetcher, lot_ids: list[str]) -> None:
    jobs = _flatten(fetcher.fetch_events(lot_ids, "jobs")["records_by_cid"])
    per_job = Counter(r["JOBID"] for r in jobs)
    multi = [job for job, n in per_job.items() if n > 1]
    assert multi, "expected jobs naming several lots"
    job = next(r for r in jobs if r["JOBID"] == multi[0])
    assert per_job[multi[0]] == len(set(job["CONTAINERIDS"].split(",")) & set(lot_ids))


def test_second_call_is_served_from_cache(redis_namespace: str, tiny_warehouse: Warehouse, lot_ids: list[str]) -> None:
    import redis

    fetcher = EventFetcher(tiny_warehouse, id_batch_size=BATCH)
    first = fetcher.fetch_events(lot_ids, "holds")
    before = tiny_warehouse.stats.count
    second = fetcher.fetch_events(list(reversed(lot_ids)), "holds")  # same set, other order
    assert tiny_warehouse.stats.count == before
    assert second == first
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = [k.decode() for k in client.scan_iter(match=f"{redis_namespace}:evt:holds:v*")]
    assert len(keys) == 1
    assert 170_000 < client.pttl(keys[0]) <= 180_000
    fetcher.fetch_events(lot_ids[:10], "history")
    hist = [k for k in client.scan_iter(match=f"{redis_namespace}:evt:history:v*")]
    assert 290_000 < client.pttl(hist[0]) <= 300_000


def test_redis_unreachable_still_answers(monkeypatch: pytest.MonkeyPatch, tiny_warehouse: Warehouse, lot_ids: list[str]) -> None:
    from mesdash.core.cache import reset_l1, reset_l2_backoff
    from mesdash.core.redis_client import reset_redis
    from mesdash.settings import reset_settings

    monkeypatch.setenv("MESDASH_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    reset_settings(), reset_redis(), reset_l1(), reset_l2_backoff()
    fetcher = EventFetcher(tiny_warehouse, id_batch_size=BATCH)
    result = fetcher.fetch_events(lot_ids, "rejects")
    assert result["quality"]["status"] == "complete" and result["records_by_cid"]
    before = tiny_warehouse.stats.count
    assert fetcher.fetch_events(lot_ids, "rejects") == result  # L1 serves the repeat
    assert tiny_warehouse.stats.count == before
    reset_redis(), reset_l1(), reset_l2_backoff()


def test_fifty_threads_one_query(tiny_warehouse: Warehouse, lot_ids: list[str]) -> None:
    fetcher = EventFetcher(tiny_warehouse, cache=LayeredCache("evt-sf"))
    ids = lot_ids[:200]  # one id batch → one warehouse query when single-flighted
    before = tiny_warehouse.stats.count
    barrier = threading.Barrier(50)
    results: list[Any] = []

    def ask() -> None:
        barrier.wait()
        results.append(fetcher.fetch_events(ids, "materials"))

    threads = [threading.Thread(target=ask) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tiny_warehouse.stats.count - before == 1
    assert len(results) == 50 and all(r == results[0] for r in results)


def test_skip_threshold_writes_nothing_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tiny_warehouse: Warehouse, lot_ids: list[str]
) -> None:
    from mesdash.settings import Settings

    cache = LayeredCache("evt-skip")
    fetcher = EventFetcher(tiny_warehouse, cache=cache, settings=Settings(event_fetcher_cache_skip_cid_threshold=5))
    with caplog.at_level(logging.WARNING, logger="mesdash.trace.events"):
        result = fetcher.fetch_events(lot_ids[:20], "history")
    assert result["records_by_cid"]
    assert "domain=history cid_count=20 threshold=5" in caplog.text
    before = tiny_warehouse.stats.count
    fetcher.fetch_events(lot_ids[:20], "history")
    assert tiny_warehouse.stats.count > before  # nothing was cached
    assert cache.stats()["l1_hits"] == 0


def test_row_guard_truncates_and_is_not_cached(tiny_warehouse: Warehouse, lot_ids: list[str]) -> None:
    from mesdash.settings import Settings

    fetcher = EventFetcher(tiny_warehouse, cache=LayeredCache("evt-trunc"), settings=Settings(event_fetcher_max_total_rows=25), id_batch_size=BATCH)
    result = fetcher.fetch_events(lot_ids, "history")
    assert result["quality"]["status"] == "truncated"
    assert result["quality"]["observed_rows"] == 25
    assert sum(len(v) for v in result["records_by_cid"].values()) == 25
    before = tiny_warehouse.stats.count
    fetcher.fetch_events(lot_ids, "history")
    assert tiny_warehouse.stats.count > before


def test_failed_batch_fails_or_is_partial(monkeypatch: pytest.MonkeyPatch, tiny_warehouse: Warehouse, lot_ids: list[str]) -> None:
    bad = lot_ids[BATCH]  # first id of the second batch
    real = tiny_warehouse.read_sql_df_slow_iter

    def flaky(sql: str, params: Any = None, **kw: Any) -> Any:
        if bad in (params or {}).values():
            raise DBUnavailable()
        return real(sql, params, **kw)

    monkeypatch.setattr(tiny_warehouse, "read_sql_df_slow_iter", flaky)
    fetcher = EventFetcher(tiny_warehouse, cache=LayeredCache("evt-partial"), id_batch_size=BATCH)
    with pytest.raises(DBUnavailable):
        fetcher.fetch_events(lot_ids, "rejects")
    result = fetcher.fetch_events(lot_ids, "rejects", allow_partial=True)
    quality = result["quality"]
    assert quality["status"] == "partial"
    assert quality["failed_ranges"] == [{"first_id": bad, "last_id": lot_ids[2 * BATCH - 1], "count": BATCH, "code": "DB_UNAVAILABLE"}]
    assert not set(result["records_by_cid"]) & set(lot_ids[BATCH : 2 * BATCH])


def test_unknown_domain(fetcher: EventFetcher) -> None:
    with pytest.raises(ValueError, match="unknown domain"):
        fetcher.fetch_events(["x"], "weather")


def test_parquet_writer_matches_iterator(fetcher: EventFetcher, lot_ids: list[str], tmp_path: Path) -> None:
    out = tmp_path / "holds.parquet"
    info = fetcher.fetch_events_to_parquet(lot_ids, "holds", out)
    table = pq.read_table(out)
    streamed = [row for grouped in fetcher.fetch_events_iter(lot_ids, "holds") for row in _flatten(grouped)]
    assert info["rows"] == table.num_rows == len(streamed)
    cols = ["CONTAINERID", "HISTORYMAINLINEID", "HOLD_STATUS"]
    assert _multiset(table.to_pylist(), cols) == _multiset(streamed, cols)
    assert not (tmp_path / "holds.parquet.tmp").exists()


def test_duckdb_history_query_equals_the_portable_one(tiny_duckdb_url: str, lot_ids_duck: list[str]) -> None:
    """events/history.duckdb.sql (the lot filter on the containers too) returns exactly the
    rows of events/history.sql, every column, in the same (ORDER BY) order."""
    from mesdash.core.db.query_builder import QueryBuilder
    from mesdash.core.db.sql_loader import SQLLoader

    wh = Warehouse(tiny_duckdb_url)
    try:
        qb = QueryBuilder()
        cid_filter = qb.in_condition("h.CONTAINERID", lot_ids_duck[:BATCH])
        duck = wh.sql("events/history", cid_filter=cid_filter)
        portable = SQLLoader("postgresql").load("events/history", cid_filter=cid_filter)
        assert duck != portable
        got, expected = wh.read_sql_df_slow(duck, qb.params), wh.read_sql_df_slow(portable, qb.params)
        assert got.columns == expected.columns
        assert Counter(got.rows) == Counter(expected.rows) and len(got.rows) > BATCH
        order = [got.columns.index(c) for c in ("CONTAINERID", "MOVEINTIMESTAMP", "TRACKINTIMESTAMP")]
        assert [[r[i] for i in order] for r in got.rows] == [[r[i] for i in order] for r in expected.rows]
    finally:
        wh.close()


def test_events_through_a_reopening_duckdb_equal_the_plain_fetch(
    tiny_duckdb_url: str, lot_ids_duck: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trace's batches through a warehouse that gives its DuckDB back after every batch
    (DUCKDB_REOPEN_ABOVE reached) return the rows of one that never does."""
    from mesdash.core.db.drivers import DuckDBDriver
    from mesdash.settings import get_settings

    monkeypatch.setattr(DuckDBDriver, "REOPEN_CHECK_SECONDS", 0.0)
    domains = ("history", "upstream_history", "rejects")  # holds: HOLD_HOURS runs with the clock
    settings = get_settings()
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    reopens = {}
    # one after the other: a second open instance of the file would keep the first alive
    for name, reopen_above in (("plain", ""), ("reopening", "1B")):
        wh = Warehouse(tiny_duckdb_url, settings=settings.model_copy(update={"duckdb_reopen_above": reopen_above}))
        try:
            fetcher = EventFetcher(wh, cache=LayeredCache(""), id_batch_size=BATCH)
            rows[name] = {
                d: [r for grouped in fetcher.fetch_events_iter(lot_ids_duck, d) for r in _flatten(grouped)]
                for d in domains
            }
            reopens[name] = wh.driver.reopens  # type: ignore[attr-defined]
        finally:
            wh.close()
    for d in domains:
        assert len(rows["reopening"][d]) == len(rows["plain"][d]) > 0
        assert Counter(tuple(r.items()) for r in rows["reopening"][d]) == Counter(
            tuple(r.items()) for r in rows["plain"][d]
        )
    batches = -(-len(lot_ids_duck) // BATCH)
    assert reopens == {"plain": 0, "reopening": reopens["reopening"]}
    assert reopens["reopening"] >= len(domains) * batches  # after every batch


@pytest.fixture
def lot_ids_duck(tiny_duckdb_url: str) -> list[str]:
    wh = Warehouse(tiny_duckdb_url)
    try:
        rows = wh.read_sql_df_slow(
            "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' ORDER BY CONTAINERID"
        ).rows
    finally:
        wh.close()
    return [r[0] for r in rows]
