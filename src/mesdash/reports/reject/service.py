"""Reject history: build the dataset of one request once, answer views from it.

``build_dataset`` runs the primary query through the batch engine — one chunk up to
``BATCH_QUERY_TIME_THRESHOLD_DAYS``, 31-day factory-day chunks above; in container mode the
inputs are resolved to lots (``trace.resolve``) and queried in batches of ``ID_BATCH_SIZE`` —
merges the chunks and keeps the result under its ``query_id`` (``core.batch.dataset``):
Arrow IPC in Redis (L1 without Redis), or a Parquet file in the query spool when it is above
the spill thresholds or too large for the cache.
Views (``views.py``) read only that dataset, with DuckDB; an expired one is
``CacheExpired`` (410).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from mesdash.core.batch import Chunk, QuerySpool, dataset, decompose_by_ids, decompose_by_time_range
from mesdash.core.batch.dataset import DatasetInfo
from mesdash.core.cache.keys import query_hash
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import CacheExpired
from mesdash.reports.params import dataset_fields
from mesdash.reports.reject.schemas import RejectQuery
from mesdash.settings import get_settings
from mesdash.trace.resolve import resolve_lots

PREFIX = "reject"
ID_BATCH_SIZE = 1000  # lots per chunk in container mode; more than one batch → a job
SPOOL_NAMESPACE = PREFIX  # datasets spill to {spool}/reject/{query_id}.parquet
_STR, _NUM, _TS = pa.string(), pa.float64(), pa.timestamp("us")
SCHEMA = pa.schema(
    [
        *((c, _STR) for c in ("CONTAINERID", "CONTAINERNAME", "MFGORDERNAME", "PJ_WORKORDER")),
        *((c, _STR) for c in ("PRODUCTLINENAME", "PJ_TYPE", "PJ_FUNCTION", "OBJECTTYPE")),
        *((c, _STR) for c in ("WORKCENTERNAME", "WORKCENTER_GROUP", "SPECNAME", "EQUIPMENTNAME")),
        ("LOSSREASONNAME", _STR),
        *((c, _NUM) for c in ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY")),
        *((c, _NUM) for c in ("PROCESSEDQTY", "DEFECTQTY", "MOVEINQTY")),
        ("TXNDATE", _TS),
        ("HISTORYMAINLINEID", _STR),
        ("CHARGED_OFF_QTY", _NUM),
    ]
)


@dataclass
class Resolution:
    """Container mode: the resolved lots and the inputs that matched none."""

    container_ids: list[str]
    not_found: list[str] = field(default_factory=list)


def query_id_for(query: RejectQuery) -> str:
    return query_hash(query.hash_params())


def _binds(query: RejectQuery) -> tuple[str, dict[str, Any]]:
    """The optional list filters as a condition, and every bind but the time bounds."""
    qb = QueryBuilder(get_settings().oracle_in_batch_size, prefix="f")
    for column, values in (
        ("c.PRODUCTLINENAME", query.packages),
        ("c.PJ_TYPE", query.pj_types),
        ("c.PJ_FUNCTION", query.pj_functions),
        ("r.LOSSREASONNAME", query.reasons),
    ):
        if values:
            qb.add_in_condition(column, list(values))
    flags = {
        "include_excluded_scrap": int(query.include_excluded_scrap),
        "exclude_material_scrap": int(query.exclude_material_scrap),
        "exclude_pb_diode": int(query.exclude_pb_diode),
    }
    return qb.condition_sql(), {**qb.params, **flags}


def _scope(chunk: Chunk, in_batch_size: int) -> tuple[str, dict[str, Any]]:
    """The chunk's rows: a factory-day window (date mode) or a batch of lots (container mode)."""
    qb = QueryBuilder(in_batch_size, prefix="c")
    if chunk.start is not None:
        start_ts, end_ts = chunk.bounds()
        qb.add("r.TXNDATE >= :start_ts AND r.TXNDATE < :end_ts", start_ts=start_ts, end_ts=end_ts)
    else:
        qb.add_in_condition("r.CONTAINERID", list(chunk.ids))
    return qb.condition_sql(), qb.params


def chunk_query(
    wh: Warehouse, query: RejectQuery, on_chunk: Callable[[Chunk], None] | None = None
) -> Callable[[Chunk, int | None], pa.Table]:
    """The primary query of one chunk (a factory-day range or a batch of lots) as Arrow."""
    condition, params = _binds(query)

    def run(chunk: Chunk, max_rows: int | None) -> pa.Table:
        if on_chunk is not None:
            on_chunk(chunk)  # progress and cancellation checkpoint of a job
        scope, scope_params = _scope(chunk, wh.settings.oracle_in_batch_size)
        sql = wh.sql("reject/reject_history", scope=scope, filters=condition)
        result = wh.read_sql_df_slow(sql, {**params, **scope_params})
        columns = {name: [row[i] for row in result.rows] for i, name in enumerate(result.columns)}
        return pa.Table.from_pydict({f.name: columns[f.name] for f in SCHEMA}, schema=SCHEMA)

    return run


def resolve_containers(query: RejectQuery, wh: Warehouse) -> Resolution:
    """Container mode: the lots the inputs name (wildcards expanded, guards of ``resolve``)."""
    if query.container_type is None:
        return Resolution([], [])
    resolved = resolve_lots(wh, query.container_type, query.containers)
    ids = [lot["container_id"] for lot in resolved["data"] if lot["container_id"]]
    return Resolution(ids, list(resolved["not_found"]))


def plan(query: RejectQuery, container_ids: Sequence[str] = ()) -> list[Chunk]:
    """One chunk up to the thresholds; 31-day chunks or ``ID_BATCH_SIZE``-lot batches above."""
    if query.start_date is None or query.end_date is None:
        return decompose_by_ids(container_ids, ID_BATCH_SIZE)
    threshold = get_settings().batch_query_time_threshold_days
    grain = 31 if query.days > threshold else query.days
    return decompose_by_time_range(query.start_date, query.end_date, grain)


def is_long(query: RejectQuery, container_ids: Sequence[str] = ()) -> bool:
    """Above ``BATCH_QUERY_TIME_THRESHOLD_DAYS`` days, or more than one batch of lots."""
    if query.mode == "date":
        return query.days > get_settings().batch_query_time_threshold_days
    return len(container_ids) > ID_BATCH_SIZE


def build_dataset(
    query: RejectQuery,
    wh: Warehouse,
    *,
    resolution: Resolution | None = None,
    parallel: int = 1,
    now: Callable[[], datetime] = datetime.now,
    max_total_rows: int | None = None,
    spool: QuerySpool | None = None,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> DatasetInfo:
    """Run the primary query (batched above the thresholds) and keep its dataset.
    ``on_chunk`` is called before each chunk that is not cached yet; raising fails it."""
    if resolution is None:
        resolution = resolve_containers(query, wh)
    extra = {"mode": query.mode, "lots": len(resolution.container_ids), "not_found": resolution.not_found}
    return dataset.build_dataset(
        PREFIX,
        query_id_for(query),
        plan(query, resolution.container_ids),
        chunk_query(wh, query, on_chunk),
        schema=SCHEMA,
        parallel=parallel,
        bulkhead=wh.bulkhead,
        now=now,
        max_total_rows=max_total_rows,
        extra=extra if query.mode == "container" else {"mode": "date"},
        spool=spool,
    )


def reusable_dataset(query: RejectQuery, today: date) -> DatasetInfo | None:
    """A kept complete dataset of a date-mode query whose range has closed (its rows no
    longer change): the query need not run again."""
    if query.end_date is None or query.end_date >= today:
        return None
    info = dataset.dataset_info(PREFIX, query_id_for(query))
    if info is None or info.quality.get("status") != "complete":
        return None
    try:
        return dataset.check_dataset(PREFIX, info.query_id)
    except CacheExpired:
        return None


def dataset_envelope(info: DatasetInfo) -> dict[str, Any]:
    """What the query route answers once the dataset is kept (lots not found in container mode)."""
    container = info.extra.get("mode") == "container"
    return {**dataset_fields(info), **({"not_found": info.extra.get("not_found", [])} if container else {})}
