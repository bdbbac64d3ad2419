"""Detection stage: the lots that tracked in at the detection station, and what was found.

Date mode: loads whose track-in falls in the window and defects whose TXNDATE does, each
read through the batch engine (one chunk up to ``BATCH_QUERY_TIME_THRESHOLD_DAYS``, 31-day
factory-day chunks above; closed chunks are cached). Container mode: the given lots' loads
and defects at the station (optionally inside a window), read in id chunks. A lot's input
is its largest load at the station (partial track-outs folded in SQL; a retest is not
counted twice); its defects are the six buckets (charged-off + DEFECTQTY) per loss reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from mesdash.core.batch import Chunk, decompose_by_ids, decompose_by_time_range, execute_plan, iterate_chunks
from mesdash.core.cache.keys import query_hash
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.factory_day import day_of, range_bounds
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.msd.schemas import AnalysisParams
from mesdash.settings import get_settings

ID_CHUNK = 1000
PREFIX = "msd"


@dataclass
class DetectedLot:
    container_id: str
    container_name: str
    wafer_lot: str | None
    pj_type: str | None
    package: str | None
    product: str | None
    workflow: str | None
    first_trackin: datetime
    input_qty: float = 0.0
    detection_machines: dict[str, str] = field(default_factory=dict)  # id → name
    reasons: dict[str, float] = field(default_factory=dict)  # loss reason → defect qty

    @property
    def detection_day(self) -> str:
        return day_of(self.first_trackin).isoformat()


@dataclass
class Detection:
    lots: dict[str, DetectedLot]
    quality: dict[str, Any]
    as_of: str


def station_orders(wh: Warehouse) -> dict[str, int]:
    """Station group → its route order (``WORKCENTERSEQUENCE_GROUP`` as a number)."""
    rows = wh.read_sql_df(wh.sql("msd/stations")).to_dicts()
    return {str(r["WORK_CENTER_GROUP"]): _order(r["GROUP_ORDER"]) for r in rows}


def _order(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 999


def check_station(wh: Warehouse, station: str) -> dict[str, int]:
    orders = station_orders(wh)
    if station not in orders:
        raise ValidationFailed(
            f"unknown station {station!r}; one of {', '.join(orders)}", extra={"station": station}
        )
    return orders


def _plan(params: AnalysisParams) -> list[Chunk]:
    if params.container_ids:
        return decompose_by_ids(params.container_ids, ID_CHUNK)
    assert params.start_date is not None and params.end_date is not None
    threshold = get_settings().batch_query_time_threshold_days
    grain = 31 if params.days > threshold else params.days
    return decompose_by_time_range(params.start_date, params.end_date, grain)


def _chunk_query(
    wh: Warehouse, params: AnalysisParams, name: str, alias: str
) -> Callable[[Chunk, int | None], pa.Table]:
    time_column = f"{alias}.TRACKINTIMESTAMP" if alias == "h" else f"{alias}.TXNDATE"

    def run(chunk: Chunk, _max_rows: int | None) -> pa.Table:
        qb = QueryBuilder(wh.settings.oracle_in_batch_size, prefix="f")
        if chunk.ids:
            qb.add_in_condition(f"{alias}.CONTAINERID", list(chunk.ids))
            if params.start_date is not None and params.end_date is not None:
                qb.add_between(time_column, *range_bounds(params.start_date, params.end_date))
        else:
            qb.add_between(time_column, *chunk.bounds())
        sql = wh.sql(name, filters=qb.condition_sql())
        binds = {**qb.params, "station": params.station}
        if alias == "r":
            binds["include_excluded_scrap"] = int(params.include_excluded_scrap)
        return wh.read_sql_df_slow(sql, binds).to_arrow()

    return run


def _rows(
    wh: Warehouse, params: AnalysisParams, chunks: list[Chunk], name: str, alias: str
) -> tuple[Iterator[dict[str, Any]], Any]:
    basis = {
        "query": name,
        "station": params.station,
        "start": params.start_date,
        "end": params.end_date,
        "ids": params.container_ids,
        "scrap": params.include_excluded_scrap,
        "chunks": [c.params() for c in chunks],
    }
    qhash = query_hash(basis)
    query = _chunk_query(wh, params, name, alias)
    plan = execute_plan(chunks, query, query_hash=qhash, cache_prefix=PREFIX, bulkhead=wh.bulkhead)

    def rows() -> Iterator[dict[str, Any]]:
        # rows are consumed as they come: a chunk that expires after the plan is run again
        for table in iterate_chunks(PREFIX, qhash, recompute=lambda i: query(chunks[i], None)):
            yield from table.to_pylist()

    return rows(), plan


def detect(wh: Warehouse, params: AnalysisParams) -> Detection:
    """The detected lots with their loads, machines and defects by reason."""
    chunks = _plan(params)
    sessions, plan_s = _rows(wh, params, chunks, "msd/detection_sessions", "h")
    lots: dict[str, DetectedLot] = {}
    for row in sessions:
        cid = str(row["CONTAINERID"]).strip()
        trackin = row["TRACKINTIMESTAMP"]
        lot = lots.get(cid)
        if lot is None:
            lot = lots[cid] = DetectedLot(
                cid,
                _text(row["CONTAINERNAME"]) or cid,
                _text(row["WAFER_LOT"]),
                _text(row["PJ_TYPE"]),
                _text(row["PACKAGE_LF"]),
                _text(row["PRODUCTNAME"]),
                _text(row["WORKFLOWNAME"]),
                trackin,
            )
        elif trackin < lot.first_trackin:
            lot.first_trackin = trackin
            lot.workflow = _text(row["WORKFLOWNAME"]) or lot.workflow
        lot.input_qty = max(lot.input_qty, float(row["LOAD_QTY"] or 0))
        lot.detection_machines[str(row["EQUIPMENTID"]).strip()] = _text(row["EQUIPMENTNAME"]) or ""
    rejects, plan_r = _rows(wh, params, chunks, "msd/detection_rejects", "r")
    for row in rejects:
        found = lots.get(str(row["CONTAINERID"]).strip())
        if found is None:  # a defect of a lot whose track-in was before the window
            continue
        reason = _text(row["LOSSREASONNAME"]) or "(none)"
        qty = float(row["CHARGED_OFF_QTY"] or 0) + float(row["DEFECTQTY"] or 0)
        found.reasons[reason] = found.reasons.get(reason, 0.0) + qty
    failed = plan_s.failed_ranges + plan_r.failed_ranges
    quality = {
        "status": "partial" if failed else "complete",
        "reasons": ["chunk_failed"] if failed else [],
        "observed_rows": plan_s.rows + plan_r.rows,
        "failed_ranges": sorted(set(failed)),
    }
    return Detection(lots, quality, plan_s.as_of)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None
