"""Equipment-period investigation: what up to 50 machines did over up to 730 factory days.

Query types (SQL under ``sql/querytool/period_*.sql``, views under ``sql/querytool_views``):

- ``status_hours`` — E10 hours per machine from RESOURCESTATUS_SHIFT (state held =
  OLDSTATUSNAME), OU% and availability %; machines without any hours get a zero row;
- ``lots`` — loads tracked in during the range, partial track-outs folded (load =
  MAX(TRACKINQTY), output = SUM(TRACKOUTQTY));
- ``materials`` — consumption per (machine, part, material lot) and the lots it went into;
- ``rejects`` — rejects of the machines' lots at the machine's work center;
- ``jobs`` — the machines' equipment jobs.

Every request is one dataset (``core.batch.dataset``) under prefix ``querytool-period`` and
the hash of its normalized parameters (``query_id``): one chunk up to
``BATCH_QUERY_TIME_THRESHOLD_DAYS``, 31-day factory-day chunks above, each cached by the
batch engine. Above the threshold the route answers 202 with a job (``run_period_job``);
the page then reads the view by ``query_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from mesdash.core.batch import Chunk, decompose_by_time_range, query_hash
from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import DatasetInfo, build_dataset, dataset_info, query_dataset
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.db.warehouse import QueryResult, Warehouse
from mesdash.core.jobs import JobContext, JobKind
from mesdash.core.resilience.errors import CacheExpired
from mesdash.querytool.jobs import request_params
from mesdash.querytool.schemas import EquipmentPeriodRequest
from mesdash.settings import get_settings

PREFIX = "querytool-period"
CHUNK_DAYS = 31
DEFAULT_PAGE = 5000
MAX_PAGE = 50_000
E10_STATES = ("PRD", "SBY", "UDT", "SDT", "EGT", "NST")
PERIOD_JOB = JobKind(
    name="querytool-period", queue="query-tool", func="mesdash.querytool.period:run_period_job"
)
_views = SQLLoader("duckdb")
_S, _F, _I, _T = pa.string(), pa.float64(), pa.int64(), pa.timestamp("us")


def _schema(*groups: tuple[pa.DataType, str]) -> pa.Schema:
    return pa.schema([(name, kind) for kind, names in groups for name in names.split()])


@dataclass(frozen=True)
class PeriodKind:
    sql: str  # primary query under sql/
    column: str  # the machine column the equipment filter applies to
    schema: pa.Schema  # columns of one chunk


KINDS: dict[str, PeriodKind] = {
    "status_hours": PeriodKind(
        "querytool/period_status_hours",
        "s.HISTORYID",
        _schema((_S, "EQUIPMENTID EQUIPMENTNAME STATUS"), (_F, "HOURS")),
    ),
    "lots": PeriodKind(
        "querytool/period_lots",
        "h.EQUIPMENTID",
        _schema(
            (_S, "EQUIPMENTID EQUIPMENTNAME CONTAINERID CONTAINERNAME PJ_TYPE PJ_WORKORDER"),
            (_S, "WORKCENTERNAME SPECNAME"),
            (_T, "TRACKINTIMESTAMP TRACKOUTTIMESTAMP"),
            (_F, "LOAD_QTY OUTPUT_QTY"),
            (_I, "TRACKOUT_ROWS"),
        ),
    ),
    "materials": PeriodKind(
        "querytool/period_materials",
        "m.EQUIPMENTID",
        _schema(
            (_S, "EQUIPMENTID EQUIPMENTNAME MATERIALPARTNAME MATERIALLOTNAME CONTAINERID"),
            (_F, "QTYCONSUMED"),
            (_T, "FIRST_TXNDATE LAST_TXNDATE"),
        ),
    ),
    "rejects": PeriodKind(
        "querytool/period_rejects",
        "h.EQUIPMENTID",
        _schema(
            (_S, "EQUIPMENTID EQUIPMENTNAME CONTAINERID CONTAINERNAME WORKCENTERNAME SPECNAME"),
            (_S, "REJECT_EQUIPMENTNAME LOSSREASONNAME"),
            (_T, "TXNDATE"),
            (_F, "MOVEINQTY"),
            (_S, "HISTORYMAINLINEID"),
            (_F, "CHARGED_OFF_QTY DEFECTQTY"),
        ),
    ),
    "jobs": PeriodKind(
        "querytool/period_jobs",
        "j.RESOURCEID",
        _schema(
            (_S, "EQUIPMENTID EQUIPMENTNAME JOBID JOBSTATUS JOBMODELNAME JOBORDERNAME"),
            (_T, "CREATEDATE COMPLETEDATE CANCELDATE FIRSTCLOCKONDATE LASTCLOCKOFFDATE"),
            (_S, "CAUSECODENAME REPAIRCODENAME SYMPTOMCODENAME CREATE_EMPNAME COMPLETE_EMPNAME"),
            (_S, "CONTAINERNAMES"),
        ),
    ),
}


def query_id_for(request: EquipmentPeriodRequest) -> str:
    return query_hash(request.hash_params())


def needs_job(request: EquipmentPeriodRequest) -> bool:
    """Ranges above ``BATCH_QUERY_TIME_THRESHOLD_DAYS`` run as a job (202)."""
    return request.days > get_settings().batch_query_time_threshold_days


def plan(request: EquipmentPeriodRequest) -> list[Chunk]:
    grain = CHUNK_DAYS if needs_job(request) else request.days
    return decompose_by_time_range(request.start_date, request.end_date, grain)


def _cell(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if kind == _F:
        return float(value)
    if kind == _I:
        return int(value)
    if kind == _S:
        return str(value) if not isinstance(value, str) else value
    return value


def to_table(result: QueryResult, schema: pa.Schema) -> pa.Table:
    """A chunk's rows as Arrow with the kind's fixed schema (Decimal → float64)."""
    position = {name: i for i, name in enumerate(result.columns)}
    arrays = []
    for f in schema:
        i = position[f.name]
        arrays.append(pa.array([_cell(row[i], f.type) for row in result.rows], type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def chunk_query(
    wh: Warehouse, request: EquipmentPeriodRequest, on_chunk: Callable[[], None] | None = None
) -> Callable[[Chunk, int | None], pa.Table]:
    kind = KINDS[request.query_type]
    qb = QueryBuilder(wh.settings.oracle_in_batch_size)
    sql = wh.sql(kind.sql, equipment_filter=qb.in_condition(kind.column, request.equipment_ids))

    def run(chunk: Chunk, max_rows: int | None) -> pa.Table:
        start_ts, end_ts = chunk.bounds()
        try:
            result = wh.read_sql_df_slow(sql, {**qb.params, "start_ts": start_ts, "end_ts": end_ts})
            return to_table(result, kind.schema)
        finally:
            if on_chunk is not None:
                on_chunk()

    return run


def build(
    wh: Warehouse,
    request: EquipmentPeriodRequest,
    *,
    now: Callable[[], datetime] = datetime.now,
    on_chunk: Callable[[], None] | None = None,
) -> DatasetInfo:
    """Run the primary query (batched, chunk-cached) and keep its dataset."""
    chunks = plan(request)
    return build_dataset(
        PREFIX,
        query_id_for(request),
        chunks,
        chunk_query(wh, request, on_chunk),
        schema=KINDS[request.query_type].schema,
        bulkhead=wh.bulkhead,
        now=now,
        extra=request.model_dump(mode="json"),
    )


def _view_sql(query_type: str) -> str:
    return _views.load(f"querytool_views/{query_type}").rstrip().rstrip(";")


def _info(query_id: str) -> DatasetInfo:
    try:
        info = dataset_info(PREFIX, query_id)
    except ValueError:
        info = None
    if info is None:
        raise CacheExpired(f"equipment-period result {query_id} expired; run the query again")
    return info


def view(query_id: str, offset: int = 0, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
    """One page of the kept result (the page reads this; no warehouse query)."""
    info = _info(query_id)
    query_type = info.extra["query_type"]
    sql = _view_sql(query_type)
    page = {"limit": limit, "offset": offset}
    rows, info = query_dataset(PREFIX, query_id, f"{sql}\nLIMIT :limit OFFSET :offset", page)
    total = query_dataset(PREFIX, query_id, f"SELECT COUNT(*) AS N FROM ({sql}) v")[0][0]["N"]
    if query_type == "status_hours" and offset == 0:
        rows = _with_idle_machines(rows, info.extra["equipment_ids"])
        total = max(total, len(rows))
    return {
        "query_id": query_id,
        "query_type": query_type,
        "equipment_ids": info.extra["equipment_ids"],
        "start_date": info.extra["start_date"],
        "end_date": info.extra["end_date"],
        "data": rows,
        "count": total,
        "offset": offset,
        "limit": limit,
        "chunks": info.chunks,
        "quality": info.quality,
        "as_of": info.as_of,
    }


def _with_idle_machines(rows: list[dict[str, Any]], equipment_ids: list[str]) -> list[dict[str, Any]]:
    """Machines with no hours at all in the range still get a row (zeros, no OU%)."""
    seen = {r["EQUIPMENTID"] for r in rows}
    zero = {f"{state}_HOURS": 0.0 for state in E10_STATES}
    blank = {"EQUIPMENTNAME": None, **zero, "TOTAL_HOURS": 0.0, "OU_PCT": None, "AVAILABILITY_PCT": None}
    idle = [{"EQUIPMENTID": eid, **blank} for eid in equipment_ids if eid not in seen]
    return rows + idle


def csv_bytes(query_id: str) -> Iterator[bytes]:
    """The whole kept result as CSV (UTF-8 BOM)."""
    query_type = _info(query_id).extra["query_type"]
    return dataset_csv(PREFIX, query_id, _view_sql(query_type))


def run_period_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The 202 path: build the dataset chunk by chunk with progress; returns where to read it."""
    from mesdash.core.db.warehouse import get_warehouse

    request = EquipmentPeriodRequest.model_validate(request_params(params))
    total = len(plan(request))
    done = 0
    ctx.progress(total=total, completed=0, stage="querying")

    def advance() -> None:
        nonlocal done
        done += 1
        ctx.progress(completed=done)

    wh = get_warehouse()
    info = build(wh, request, on_chunk=advance)
    ctx.check()
    return {
        "query_id": info.query_id,
        "query_type": request.query_type,
        "rows": info.rows,
        "quality": info.quality,
        "as_of": info.as_of,
        "view_url": f"/api/query-tool/equipment-period/{info.query_id}",
    }
