"""The engine over a real warehouse (DuckDB and PostgreSQL) with real Redis: a reject query
cut into factory-day chunks, cached and merged (or spilled), equals one monolithic query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mesdash.core.batch import Chunk, QuerySpool, decompose_by_time_range, execute_plan, merge_chunks
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.factory_day import range_bounds
from test_batch_support import use_backend

REJECT_SQL = """
SELECT r.CONTAINERID, r.LOSSREASONNAME, r.REJECTQTY, r.DEFECTQTY, r.TXNDATE, r.HISTORYMAINLINEID
FROM dwh.DW_MES_LOTREJECTHISTORY r
WHERE r.TXNDATE >= :start_ts AND r.TXNDATE < :end_ts
"""
TOTAL_SQL = """
SELECT COUNT(*) AS N, SUM(r.REJECTQTY) AS QTY
FROM dwh.DW_MES_LOTREJECTHISTORY r
WHERE r.TXNDATE >= :start_ts AND r.TXNDATE < :end_ts
"""
START, END = date(2026, 4, 1), date(2026, 7, 5)


@pytest.fixture
def redis_ns(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> Iterator[str]:
    yield from use_backend(monkeypatch, "redis", redis_url, tmp_path / "spool")


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    cols = [table.column(c).to_pylist() for c in table.column_names]
    return sorted(zip(*cols, strict=True), key=repr)


def test_chunked_reject_query_equals_one_monolithic_query(tiny_warehouse: Warehouse, redis_ns: str) -> None:
    wh = tiny_warehouse
    calls: list[Chunk] = []

    def query_fn(chunk: Chunk, max_rows: int | None) -> pa.Table:
        calls.append(chunk)
        start_ts, end_ts = chunk.bounds()
        return wh.read_sql_df_slow(REJECT_SQL, {"start_ts": start_ts, "end_ts": end_ts}).to_arrow()

    chunks = decompose_by_time_range(START, END, 14)
    assert len(chunks) == 7
    result = execute_plan(
        chunks, query_fn, parallel=2, query_hash="tiny", cache_prefix="reject", bulkhead=wh.bulkhead
    )
    assert result.status == "completed" and len(calls) == 7

    start_ts, end_ts = range_bounds(START, END)
    whole = wh.read_sql_df_slow(REJECT_SQL, {"start_ts": start_ts, "end_ts": end_ts}).to_arrow()
    [(count, qty)] = wh.read_sql_df_slow(TOTAL_SQL, {"start_ts": start_ts, "end_ts": end_ts}).rows
    assert count > 100  # the tiny fab has rejects in this range

    merged = merge_chunks("reject", "tiny")
    assert merged.table is not None and merged.rows == count == result.rows
    assert _rows(merged.table) == _rows(whole)
    assert sum(merged.table.column("REJECTQTY").to_pylist()) == pytest.approx(float(qty))
    assert all(isinstance(v, datetime) for v in merged.table.column("TXNDATE").to_pylist()[:5])

    spilled = merge_chunks("reject", "tiny", spool=QuerySpool(), query_id="tiny", max_total_rows=count // 3)
    assert spilled.spilled and spilled.rows == count
    back = QuerySpool().read("batch", "tiny")
    assert back is not None and _rows(back) == _rows(whole)

    before = wh.stats.count
    again = execute_plan(chunks, query_fn, query_hash="tiny", cache_prefix="reject")
    assert again.skipped == list(range(7)) and wh.stats.count == before and len(calls) == 7
