"""Hold-history views, each computed with DuckDB from the cached dataset of a ``query_id``.

Every view reads ``hold_views/records`` (hold type, status, hours, factory days, repeats)
and narrows it with a ``HoldSelection``. A record type is a condition on a time window —
the dataset's range, or the clicked day: *new* = held in the window, *released* = released
in it, *on_hold* = held before the window ends and not released by then (never later than
the dataset's cutoff).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import DatasetInfo, check_dataset, open_dataset
from mesdash.core.db import binds
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.factory_day import SHIFT, day_start, range_bounds
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.reports.hold.schemas import HoldSelection, quality_reasons
from mesdash.reports.hold.service import PREFIX, SCHEMA
from mesdash.reports.params import check_page, envelope, order_by

TYPES = ("quality", "non-quality")
BUCKETS = ("<4h", "4-24h", "1-3d", ">3d")
DERIVED = ("HOLD_TYPE", "HOLD_STATUS", "HOLD_HOURS", "HOLD_DAY", "RELEASE_DAY", "RELEASED_AT")
SORTABLE = frozenset((*SCHEMA.names, *DERIVED))
MAX_PAGE_SIZE = 1000
_loader = SQLLoader("duckdb")


# ------------------------------------------------------------------ selections ---------
def _window(info: DatasetInfo, day: date | None) -> tuple[datetime, datetime, datetime]:
    """(low, high, cut) of the record-type window; cut = high, never after the cutoff."""
    start, end = date.fromisoformat(info.extra["start_date"]), date.fromisoformat(info.extra["end_date"])
    if day is not None and not start <= day <= end:
        raise ValidationFailed(f"day {day} is outside the queried range {start}..{end}")
    low, high = range_bounds(day or start, day or end)
    return low, high, min(high, datetime.fromisoformat(info.extra["cutoff"]))


def _filters(info: DatasetInfo, sel: HoldSelection) -> tuple[str, dict[str, Any]]:
    low, high, cut = _window(info, sel.day)
    records = {
        "new": "(r.HOLDTXNDATE >= :w_low AND r.HOLDTXNDATE < :w_high)",
        "released": "(r.RELEASED_AT >= :w_low AND r.RELEASED_AT < :w_high)",
        "on_hold": "(r.HOLDTXNDATE < :w_cut AND (r.RELEASED_AT IS NULL OR r.RELEASED_AT >= :w_cut))",
    }
    qb = QueryBuilder(prefix="s")
    qb.add(" OR ".join(records[t] for t in sel.record_type), w_low=low, w_high=high, w_cut=cut)
    if sel.hold_type != "all":
        qb.add("r.HOLD_TYPE = :w_type", w_type=sel.hold_type)
    if sel.reasons:
        qb.add_in_condition("r.HOLDREASONNAME", list(sel.reasons))
    return qb.condition_sql(), qb.params


def _base(info: DatasetInfo) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``records`` include's slot and binds: quality reasons, cutoff, the 07:30 shift."""
    qb = QueryBuilder(prefix="q")
    quality = qb.in_condition("d.HOLDREASONNAME", quality_reasons())
    cutoff = datetime.fromisoformat(info.extra["cutoff"])
    return {"quality": quality}, {**qb.params, "cutoff": cutoff, "shift": SHIFT}


class _Session:
    """One opened dataset: several views run on the same DuckDB connection (the dataset is
    read from the cache once)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, info: DatasetInfo) -> None:
        self.con, self.info = con, info

    def run(
        self,
        name: str,
        sel: HoldSelection | None = None,
        tables: Mapping[str, pa.Table] | None = None,
        params: Mapping[str, Any] | None = None,
        **slots: str,
    ) -> list[dict[str, Any]]:
        """Rows of view ``name`` (plus extra registered ``tables``), narrowed by ``sel``."""
        base_slots, bound = _base(self.info)
        if sel is not None:
            condition, extra = _filters(self.info, sel)
            base_slots["filters"] = condition
            bound.update(extra)
        for table_name, table in (tables or {}).items():
            self.con.register(table_name, table)
        sql, values = binds.render(_loader.load(f"hold_views/{name}", **base_slots, **slots),
                                   {**bound, **(params or {})}, "duckdb")
        cursor = self.con.execute(sql, values)
        names = [str(d[0]).upper() for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextlib.contextmanager
def _session(query_id: str) -> Iterator[_Session]:
    with open_dataset(PREFIX, query_id) as (con, info):
        yield _Session(con, info)


def _run(
    query_id: str, name: str, sel: HoldSelection | None = None
) -> tuple[list[dict[str, Any]], DatasetInfo]:
    with _session(query_id) as session:
        return session.run(name, sel), session.info


def _envelope(info: DatasetInfo, sel: HoldSelection | None = None, **body: Any) -> dict[str, Any]:
    return envelope(info, sel, range_keys=("start_date", "end_date", "cutoff"), **body)


# ------------------------------------------------------------------ trend --------------
def _days(info: DatasetInfo) -> pa.Table:
    """The range's factory days that started before the cutoff."""
    start, end = date.fromisoformat(info.extra["start_date"]), date.fromisoformat(info.extra["end_date"])
    cutoff = datetime.fromisoformat(info.extra["cutoff"])
    days = []
    day = start
    while day <= end and day_start(day) < cutoff:
        days.append(day)
        day += timedelta(days=1)
    return pa.table({"DAY": pa.array(days, pa.date32())})


_TREND_FIELDS = {
    "ON_HAND_COUNT": "on_hand",
    "ON_HAND_QTY": "on_hand_qty",
    "NEW_COUNT": "new",
    "NEW_QTY": "new_qty",
    "RELEASED_COUNT": "released",
    "RELEASED_QTY": "released_qty",
    "FUTURE_COUNT": "future",
    "REPEAT_QUALITY_COUNT": "repeat_quality",
}


def trend_series(query_id: str) -> tuple[dict[str, list[dict[str, Any]]], DatasetInfo]:
    with _session(query_id) as session:
        return _trend_series(session), session.info


def _trend_series(session: _Session) -> dict[str, list[dict[str, Any]]]:
    """Per factory day and hold type (quality, non-quality, all): on hand, new, released,
    future holds, repeated quality holds — counts and quantities."""
    info = session.info
    first_day = date.fromisoformat(info.extra["start_date"])
    rows = session.run("trend", tables={"days": _days(info)}, params={"first_day": first_day})
    series: dict[str, list[dict[str, Any]]] = {t: [] for t in (*TYPES, "all")}
    for row in rows:
        point = {"day": row["DAY"].isoformat(), **{v: _num(row[k]) for k, v in _TREND_FIELDS.items()}}
        series[row["HOLD_TYPE"]].append(point)
    for quality, other in zip(series["quality"], series["non-quality"], strict=True):
        total = {k: quality[k] + other[k] for k in _TREND_FIELDS.values()}
        series["all"].append({"day": quality["day"], **total})
    return series


def trend(query_id: str) -> dict[str, Any]:
    series, info = trend_series(query_id)
    return _envelope(info, series=series)


def _num(value: Any) -> float | int:
    number = float(value or 0)
    return int(number) if number.is_integer() else number


# ------------------------------------------------------------------ views --------------
def summary(query_id: str, sel: HoldSelection) -> dict[str, Any]:
    """KPI cards: totals of the chosen hold type over the range (or the clicked day), average
    new and released per day, on hand at the end, durations of the selected records."""
    with _session(query_id) as session:
        series, info = _trend_series(session), session.info
        durations_rows = session.run("durations", sel)
    points = series[sel.hold_type]
    if sel.day is not None:
        points = [p for p in points if p["day"] == sel.day.isoformat()]
    days = len(points)
    total = {k: sum(p[k] for p in points) for k in ("new", "new_qty", "released", "released_qty",
                                                    "future", "repeat_quality")}
    last = points[-1] if points else {"on_hand": 0, "on_hand_qty": 0}
    selected = sum(int(r["HOLDS"]) for r in durations_rows)
    released = [r for r in durations_rows if r["HOLD_STATUS"] == "RELEASED"]
    released_n = sum(int(r["HOLDS"]) for r in released)
    released_hours = sum(float(r["AVG_HOURS"]) * int(r["HOLDS"]) for r in released)
    kpis = {
        "days": days,
        **total,
        "avg_new_per_day": total["new"] / days if days else None,
        "avg_released_per_day": total["released"] / days if days else None,
        "on_hand_end": last["on_hand"],
        "on_hand_qty_end": last["on_hand_qty"],
        "peak_on_hand": max((p["on_hand"] for p in points), default=0),
        "selected_records": selected,
        "selected_qty": _num(sum(float(r["QTY"]) for r in durations_rows)),
        "avg_release_hours": released_hours / released_n if released_n else None,
    }
    return _envelope(info, sel, kpis=kpis)


def pareto(query_id: str, sel: HoldSelection) -> dict[str, Any]:
    """Hold reasons of the selected records, most holds first, cumulative %."""
    rows, info = _run(query_id, "pareto", sel.model_copy(update={"reasons": ()}))
    items = [
        {
            "reason": row["ITEM"],
            "hold_type": row["HOLD_TYPE"],
            "holds": int(row["HOLDS"]),
            "qty": _num(row["QTY"]),
            "lots": int(row["LOTS"]),
            "cumulative_pct": 100 * float(row["CUM_HOLDS"]) / float(row["ALL_HOLDS"]),
        }
        for row in rows
    ]
    return _envelope(info, sel, items=items)


def durations(query_id: str, sel: HoldSelection) -> dict[str, Any]:
    """Four duration buckets for released holds and holds still on hold: count, quantity,
    average and maximum hours (every bucket listed, empty ones with zero)."""
    rows, info = _run(query_id, "durations", sel)
    found = {(r["HOLD_STATUS"], r["BUCKET"]): r for r in rows}
    out: dict[str, list[dict[str, Any]]] = {}
    for status in ("RELEASED", "ON_HOLD"):
        out[status.lower()] = [
            {
                "bucket": bucket,
                "holds": int(found[(status, bucket)]["HOLDS"]) if (status, bucket) in found else 0,
                "qty": _num(found[(status, bucket)]["QTY"]) if (status, bucket) in found else 0,
                "avg_hours": _hours(found, status, bucket, "AVG_HOURS"),
                "max_hours": _hours(found, status, bucket, "MAX_HOURS"),
            }
            for bucket in BUCKETS
        ]
    return _envelope(info, sel, buckets=out)


def _hours(
    found: Mapping[tuple[str, str], Mapping[str, Any]], status: str, bucket: str, col: str
) -> float | None:
    row = found.get((status, bucket))
    return round(float(row[col]), 4) if row is not None else None


def _order(sort: str) -> str:
    return order_by(sort, SORTABLE, "HISTORYMAINLINEID")


def rows_page(
    query_id: str, sel: HoldSelection, page: int = 1, page_size: int = 100, sort: str = "-HOLDTXNDATE"
) -> dict[str, Any]:
    """One page (1-based) of the selected records, with the total count."""
    check_page(page, page_size, MAX_PAGE_SIZE)
    with _session(query_id) as session:
        params = {"skip": (page - 1) * page_size, "take": page_size}
        rows = session.run("rows", sel, params=params, order=_order(sort))
        total = sum(int(r["HOLDS"]) for r in session.run("counts", sel))
        info = session.info
    return _envelope(info, sel, page=page, page_size=page_size, total=total, sort=sort, rows=rows)


def export_csv(query_id: str, sel: HoldSelection, sort: str = "HOLDTXNDATE") -> Iterator[bytes]:
    """Every selected record as CSV (the list's columns), streamed."""
    info = check_dataset(PREFIX, query_id)
    base_slots, bound = _base(info)
    condition, extra = _filters(info, sel)
    sql = _loader.load("hold_views/export", **base_slots, filters=condition, order=_order(sort))
    return dataset_csv(PREFIX, query_id, sql, {**bound, **extra})


def today(info: DatasetInfo) -> dict[str, Any]:
    """On hold now, new today, released today — per hold type — from today's dataset."""
    out: dict[str, Any] = {}
    with _session(info.query_id) as session:
        counts = {
            r: session.run("counts", HoldSelection(record_type=(r,))) for r in ("on_hold", "new", "released")
        }
    for record, rows in counts.items():
        per_type: dict[str, dict[str, float]] = {
            t: {"holds": 0, "qty": 0, "lots": 0} for t in (*TYPES, "all")
        }
        for row in rows:
            for t in (row["HOLD_TYPE"], "all"):
                per_type[t]["holds"] += int(row["HOLDS"])
                per_type[t]["qty"] += _num(row["QTY"])
                per_type[t]["lots"] += int(row["LOTS"])
        out[record] = per_type
    return _envelope(info, day=info.extra["start_date"], snapshot=out)
