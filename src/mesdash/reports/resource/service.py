"""Equipment history: run the primary query once per request (batched above the threshold)
and keep its dataset — one row per machine and factory day: E10 hours per state held,
output and rejected quantity — under ``query_id``; progress of a running plan is the batch
engine's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from mesdash.core.batch import Chunk, query_hash, read_progress
from mesdash.core.batch.dataset import DatasetInfo, plan_hash
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.factory_day import SHIFT
from mesdash.reports.params import Wrap, build_range, plan_grain, time_plan
from mesdash.reports.resource.schemas import ResourceQuery
from mesdash.settings import get_settings

PREFIX = "resource"
_STR, _NUM = pa.string(), pa.float64()
SCHEMA = pa.schema(
    [
        *((c, _STR) for c in ("RESOURCEID", "RESOURCENAME", "RESOURCEFAMILYNAME", "LOCATIONNAME")),
        *((c, _STR) for c in ("WORKCENTERNAME", "WORKCENTER_GROUP")),
        *((c, _NUM) for c in ("PJ_ISPRODUCTION", "PJ_ISKEY", "PJ_ISMONITOR")),
        ("FDAY", pa.date32()),
        *((c, _NUM) for c in ("PRD", "SBY", "UDT", "SDT", "EGT", "NST", "OUTPUT_QTY", "NG_QTY")),
    ]
)
_FLOATS = [f.name for f in SCHEMA if f.type == _NUM]


def query_id_for(query: ResourceQuery) -> str:
    return query_hash({**query.hash_params(), "grain": plan_grain(query.days)})


def _filters(query: ResourceQuery) -> tuple[str, dict[str, Any]]:
    qb = QueryBuilder(get_settings().oracle_in_batch_size, prefix="f")
    for column, values in (
        ("g.WORK_CENTER_GROUP", query.workcenter_groups),
        ("r.RESOURCEFAMILYNAME", query.families),
        ("r.RESOURCENAME", query.machines),
        ("r.LOCATIONNAME", query.locations),
    ):
        if values:
            qb.add_in_condition(column, list(values))
    for column, flag in (
        ("r.PJ_ISPRODUCTION", query.is_production),
        ("r.PJ_ISKEY", query.is_key),
        ("r.PJ_ISMONITOR", query.is_monitor),
    ):
        if flag is not None:
            qb.add(f"COALESCE({column}, 0) {'=' if flag else '<>'} 1")
    return qb.condition_sql(), qb.params


def _as_table(columns: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    for name in _FLOATS:  # NUMBER / DECIMAL arrive as Decimal on some drivers
        data[name] = [float(v) if isinstance(v, Decimal) else v for v in data[name]]
    return pa.Table.from_pydict({f.name: data[f.name] for f in SCHEMA}, schema=SCHEMA)


def chunk_query(wh: Warehouse, query: ResourceQuery) -> Callable[[Chunk, int | None], pa.Table]:
    condition, params = _filters(query)
    sql = wh.sql("resource/resource_history", filters=condition)
    shift_minutes = int(SHIFT.total_seconds() // 60)

    def run(chunk: Chunk, _max_rows: int | None) -> pa.Table:
        start_ts, end_ts = chunk.bounds()
        binds = {**params, "start_ts": start_ts, "end_ts": end_ts, "shift_minutes": shift_minutes}
        result = wh.read_sql_df_slow(sql, binds)
        return _as_table(list(result.columns), list(result.rows))

    return run


def build(
    query: ResourceQuery,
    wh: Warehouse,
    *,
    now: Callable[[], datetime] = datetime.now,
    parallel: int = 1,
    wrap: Wrap | None = None,
) -> DatasetInfo:
    """Run the primary query and keep its dataset (``build_range``)."""
    return build_range(PREFIX, query_id_for(query), query, chunk_query(wh, query), wh, schema=SCHEMA,
                       now=now, parallel=parallel, wrap=wrap)


def progress(query: ResourceQuery) -> dict[str, Any]:
    """The request's plan progress (total, completed, failed, pct, status) while it runs or
    after; ``status: unknown`` before it started or once the record expired."""
    query_id = query_id_for(query)
    record = read_progress(PREFIX, plan_hash(query_id, time_plan(query)))
    return {"query_id": query_id, **(record or {"status": "unknown"})}
