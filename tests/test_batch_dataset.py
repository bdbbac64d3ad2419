"""Report datasets (core/batch/dataset.py, csv_export.py): build from a plan, keep in the
cache or the spool, open with DuckDB, stream CSV, expire — with Redis and without."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mesdash.core.batch import Chunk, QuerySpool, decompose_by_ids, decompose_by_time_range
from mesdash.core.batch.csv_export import BOM, dataset_csv
from mesdash.core.batch.dataset import (
    build_dataset,
    check_dataset,
    dataset_info,
    drop_dataset,
    open_dataset,
    query_dataset,
    query_view,
    store_dataset,
)
from mesdash.core.resilience.errors import CacheExpired
from test_batch_support import use_backend

SCHEMA = pa.schema([("DAY", pa.date32()), ("ITEM", pa.string()), ("QTY", pa.float64())])
NOW = datetime(2026, 3, 1, 12, 0)


@pytest.fixture(params=["redis", "local"])
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[str]:
    gen = use_backend(monkeypatch, request.param, redis_url, tmp_path / "spool")
    next(gen)
    yield str(request.param)
    next(gen, None)


def per_day(chunk: Chunk, _max_rows: int | None) -> pa.Table:
    """Two rows per factory day of the chunk: item A qty 1, item B qty = day of month."""
    assert chunk.start is not None and chunk.end is not None
    rows = []
    for n in range((chunk.end - chunk.start).days + 1):
        day = date.fromordinal(chunk.start.toordinal() + n)
        rows += [{"DAY": day, "ITEM": "A", "QTY": 1.0}, {"DAY": day, "ITEM": "B", "QTY": float(day.day)}]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_build_open_query_and_spill(backend: str) -> None:
    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 2, 28), 31)
    info = build_dataset("demo", "q1", chunks, per_day, schema=SCHEMA, now=lambda: NOW, extra={"days": 59})
    assert (info.rows, info.chunks, info.spilled) == (118, 2, False)
    assert info.quality["status"] == "complete" and info.as_of == "2026-03-01T12:00:00"
    assert info.columns == ["DAY", "ITEM", "QTY"] and dataset_info("demo", "q1") == info
    rows, got = query_dataset(
        "demo", "q1", "SELECT ITEM, SUM(QTY) AS q FROM dataset GROUP BY ITEM ORDER BY 1"
    )
    expected_b = sum(range(1, 32)) + sum(range(1, 29))
    assert rows == [{"ITEM": "A", "Q": 59.0}, {"ITEM": "B", "Q": float(expected_b)}]
    assert got.extra == {"days": 59}

    spool = QuerySpool()
    spilled = build_dataset("demo", "q1", chunks, per_day, max_total_rows=10, spool=spool, now=lambda: NOW)
    assert spilled.spilled and spool.path_for("demo", "q1").exists()
    again, _ = query_dataset("demo", "q1", "SELECT ITEM, SUM(QTY) AS q FROM dataset GROUP BY ITEM ORDER BY 1")
    assert again == rows
    with open_dataset("demo", "q1") as (con, opened):
        assert opened.spilled and con.execute("SELECT COUNT(*) FROM dataset").fetchone() == (118,)

    # a later in-cache copy replaces the spool file
    store_dataset("demo", "q1", per_day(chunks[0], None))
    assert not spool.path_for("demo", "q1").exists()
    assert query_dataset("demo", "q1", "SELECT COUNT(*) AS n FROM dataset")[0] == [{"N": 62}]


def test_empty_result_keeps_columns_and_csv(backend: str) -> None:
    def nothing(chunk: Chunk, _max_rows: int | None) -> pa.Table:
        return SCHEMA.empty_table()

    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 1, 5), 5)
    info = build_dataset("demo", "empty", chunks, nothing, schema=SCHEMA, now=lambda: NOW)
    assert info.rows == 0 and info.columns == SCHEMA.names
    body = b"".join(dataset_csv("demo", "empty", "SELECT * FROM dataset"))
    assert body == BOM + b"DAY,ITEM,QTY\r\n"


def test_csv_stream_and_expiry(backend: str) -> None:
    table = pa.table(
        {
            "TS": pa.array([datetime(2026, 1, 2, 7, 30), None], pa.timestamp("us")),
            "NAME": ["héllo, world", "x"],
            "QTY": [3.0, 2.5],
        }
    )
    store_dataset("demo", "csv", table, as_of="2026-01-03T00:00:00")
    sql = "SELECT *, ROW_NUMBER() OVER (ORDER BY QTY) AS RN__ FROM dataset ORDER BY QTY DESC"
    parts = list(dataset_csv("demo", "csv", sql, batch_rows=1))
    assert len(parts) == 2 and parts[0].startswith(BOM)  # the header goes with the first batch
    records = list(csv.reader(io.StringIO(b"".join(parts)[3:].decode("utf-8"))))
    assert records == [["TS", "NAME", "QTY"], ["2026-01-02 07:30:00", "héllo, world", "3"], ["", "x", "2.5"]]
    assert b"".join(parts).endswith(b',"x",2.5\r\n')  # CRLF lines, NULL an empty field

    fine = pa.table({"TS": pa.array([datetime(2026, 1, 2, 7, 30, 5, 120000)], pa.timestamp("us"))})
    store_dataset("demo", "fine", fine)
    assert b"".join(dataset_csv("demo", "fine", "SELECT * FROM dataset")).endswith(b'07:30:05.120000"\r\n')

    drop_dataset("demo", "csv")
    assert dataset_info("demo", "csv") is None
    with pytest.raises(CacheExpired):
        dataset_csv("demo", "csv", sql)  # before the first byte, not mid-download
    with pytest.raises(CacheExpired):
        check_dataset("demo", "../etc")  # a malformed id names no dataset
    with pytest.raises(ValueError):
        store_dataset("demo", "../etc", table)


def test_spilled_file_gone_is_expired(backend: str) -> None:
    spool = QuerySpool()
    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 1, 31), 31)
    build_dataset("demo", "gone", chunks, per_day, max_total_rows=1, spool=spool, now=lambda: NOW)
    spool.path_for("demo", "gone").unlink()
    with pytest.raises(CacheExpired):
        query_dataset("demo", "gone", "SELECT 1 FROM dataset")


def test_a_changed_plan_never_reuses_old_chunks(backend: str) -> None:
    def by_ids(chunk: Chunk, _max_rows: int | None) -> pa.Table:
        return pa.table({"ID": list(chunk.ids)})

    one = decompose_by_ids(["a", "b", "c", "d"], 4)
    assert build_dataset("demo", "ids", one, by_ids).rows == 4
    calls: list[tuple[str, ...]] = []

    def counted(chunk: Chunk, max_rows: int | None) -> pa.Table:
        calls.append(chunk.ids)
        return by_ids(chunk, max_rows)

    two = decompose_by_ids(["a", "b", "c", "d", "e"], 2)  # same query id, another lot list
    info = build_dataset("demo", "ids", two, counted)
    assert info.rows == 5 and len(calls) == 3
    assert query_dataset("demo", "ids", "SELECT COUNT(DISTINCT ID) AS n FROM dataset")[0] == [{"N": 5}]
    calls.clear()
    assert build_dataset("demo", "ids", two, counted).rows == 5 and calls == []  # same plan: cached


def test_views_are_computed_once_per_build(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesdash.core.batch import dataset as module

    computed: list[str] = []
    real = module.query_dataset

    def counting(prefix: str, query_id: str, sql: str, params: Any = None) -> Any:
        computed.append(sql)
        return real(prefix, query_id, sql, params)

    monkeypatch.setattr(module, "query_dataset", counting)
    table = pa.table({"TS": pa.array([datetime(2026, 1, 2, 7, 30)], pa.timestamp("us")), "QTY": [2.0]})
    store_dataset("demo", "views", table)
    sql = "SELECT TS, SUM(QTY) AS Q FROM dataset WHERE QTY > :low GROUP BY TS"
    first, info = query_view("demo", "views", sql, {"low": 1})
    assert first == [{"TS": "2026-01-02T07:30:00", "Q": 2.0}] and len(computed) == 1
    assert query_view("demo", "views", sql, {"low": 1}) == (first, info) and len(computed) == 1
    assert query_view("demo", "views", sql, {"low": 5})[0] == [] and len(computed) == 2
    store_dataset("demo", "views", pa.table({"TS": table["TS"], "QTY": [3.0]}))  # a new build
    assert query_view("demo", "views", sql, {"low": 1})[0][0]["Q"] == 3.0 and len(computed) == 3
    drop_dataset("demo", "views")
    with pytest.raises(CacheExpired):
        query_view("demo", "views", sql, {"low": 1})  # cached results or not


def test_concurrent_views_of_a_spilled_dataset(backend: str) -> None:
    """Many threads querying one spilled dataset at once: every answer right, no catalog
    conflict between the cursors of the shared view connection."""
    from concurrent.futures import ThreadPoolExecutor

    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 2, 28), 31)
    info = build_dataset("demo", "qc", chunks, per_day, max_total_rows=10, spool=QuerySpool(), now=lambda: NOW)
    assert info.spilled

    def view(i: int) -> Any:
        sql = "SELECT COUNT(*) AS n, SUM(QTY) AS q FROM dataset WHERE ITEM = :item"
        return query_dataset("demo", "qc", sql, {"item": "AB"[i % 2]})[0]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(view, range(64)))
    expected_b = float(sum(range(1, 32)) + sum(range(1, 29)))
    assert answers == [[{"N": 59, "Q": 59.0}] if i % 2 == 0 else [{"N": 59, "Q": expected_b}] for i in range(64)]


def test_a_spool_file_removed_while_a_view_reads_it_is_410_not_500(backend: str) -> None:
    """The spool cleanup removes an expired dataset's file between the view's registration
    and its scan (seen once in the 30-minute soak as a 500): the view answers CacheExpired."""
    from mesdash.core.batch.dataset import open_dataset

    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 2, 28), 31)
    spool = QuerySpool()
    info = build_dataset("demo", "gone", chunks, per_day, max_total_rows=10, spool=spool, now=lambda: NOW)
    assert info.spilled
    with pytest.raises(CacheExpired), open_dataset("demo", "gone", spool) as (con, _info):
        spool.path_for("demo", "gone").unlink()  # what the cleanup does once the TTL ran out
        con.execute("SELECT COUNT(*) FROM dataset").fetchall()


def test_an_export_that_started_survives_its_spool_file_expiring(backend: str) -> None:
    """The 30-minute soak cut four CSV exports mid-stream: the dataset was checked, the 200
    went out, and the TTL ran out before the stream's first read, which raised CacheExpired
    after the response had started. The export now opens the dataset (and its file) before
    it answers: an expired one is a 410 before any byte, and one that expires or is removed
    by the cleanup after that streams to its end from the open file."""
    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 6, 30), 31)
    spool = QuerySpool()
    info = build_dataset("demo", "leaving", chunks, per_day, max_total_rows=10, spool=spool, now=lambda: NOW)
    assert info.spilled and info.rows == 362
    body = dataset_csv("demo", "leaving", "SELECT DAY, ITEM, QTY FROM dataset", batch_rows=10)
    drop_dataset("demo", "leaving", spool)  # what the cleanup does once the TTL ran out
    assert not spool.path_for("demo", "leaving").exists()
    rows = list(csv.reader(io.StringIO(b"".join(body)[len(BOM) :].decode())))
    assert rows[0] == ["DAY", "ITEM", "QTY"] and len(rows) == 1 + 362
    assert sum(float(r[2]) for r in rows[1:]) == sum(
        1.0 + date.fromordinal(d).day for d in range(date(2026, 1, 1).toordinal(), date(2026, 7, 1).toordinal())
    )
    with pytest.raises(CacheExpired):  # gone before the export answered: 410, not a cut stream
        dataset_csv("demo", "leaving", "SELECT DAY, ITEM, QTY FROM dataset")


def test_a_chunk_expiring_between_plan_and_merge_is_rebuilt_not_expired(backend: str) -> None:
    """The plan skips a chunk as cached, and it expires before the merge reads it: the build
    runs the plan again (the expired chunk re-runs) instead of raising ``CacheExpired`` —
    what a primary query answered as 410."""
    from mesdash.core.batch.dataset import plan_hash
    from mesdash.core.batch.store import ChunkStore
    from mesdash.core.cache import get_l1
    from mesdash.core.redis_client import get_redis

    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 3, 31), 31)
    assert build_dataset("demo", "race", chunks, per_day, now=lambda: NOW).rows == 180
    store = ChunkStore("demo", plan_hash("race", chunks))

    def expire(index: int) -> None:
        client = get_redis()
        if client is not None:
            client.delete(store.chunk_key(index))
        else:
            get_l1().delete(store.chunk_key(index))

    expire(2)  # chunk 2 re-runs; while it runs, chunk 0 (skipped as cached) expires
    calls: list[int] = []

    def racing(chunk: Chunk, max_rows: int | None) -> pa.Table:
        calls.append(chunk.index)
        if calls == [2]:
            expire(0)
        return per_day(chunk, max_rows)

    info = build_dataset("demo", "race", chunks, racing, now=lambda: NOW)
    assert (info.rows, info.quality["status"]) == (180, "complete")
    assert calls == [2, 0]  # the second plan run re-ran only the expired chunk
    assert query_dataset("demo", "race", "SELECT COUNT(*) AS n FROM dataset")[0] == [{"N": 180}]


def test_usable_dataset_is_none_once_any_piece_is_gone(backend: str) -> None:
    from mesdash.core.batch.dataset import usable_dataset

    spool = QuerySpool()
    chunks = decompose_by_time_range(date(2026, 1, 1), date(2026, 1, 31), 31)
    kept = build_dataset("demo", "whole", chunks, per_day, now=lambda: NOW)
    spilled = build_dataset("demo", "half", chunks, per_day, max_total_rows=1, spool=spool, now=lambda: NOW)
    assert usable_dataset("demo", "whole") == kept and usable_dataset("demo", "half") == spilled
    spool.path_for("demo", "half").unlink()  # info kept, spool file gone
    assert dataset_info("demo", "half") is not None and usable_dataset("demo", "half") is None
    drop_dataset("demo", "whole")
    assert usable_dataset("demo", "whole") is None
