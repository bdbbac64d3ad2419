"""Equipment-history views, each computed with DuckDB from the cached dataset of a
``query_id``: summary, trend per period, stacked state hours, machine × period heatmap,
paged machine × period detail and its CSV. Every percentage comes from
``resource_views/aggregate`` (one E10 formula)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import DatasetInfo, query_dataset
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.reports.params import check_page, envelope, row_window
from mesdash.reports.resource.schemas import ResourceSelection
from mesdash.reports.resource.service import PREFIX

STATES = ("PRD", "SBY", "UDT", "SDT", "EGT", "NST")
BUCKETS = {
    "day": "FDAY",
    "week": "DATE_TRUNC('week', FDAY)",
    "month": "DATE_TRUNC('month', FDAY)",
    "year": "DATE_TRUNC('year', FDAY)",
}
MACHINE = "RESOURCENAME, RESOURCEID, WORKCENTER_GROUP, RESOURCEFAMILYNAME, LOCATIONNAME"
KEYS = {"total": "ALL_", "period": "PERIOD", "machine": MACHINE, "machine_period": f"{MACHINE}, PERIOD"}
HEAT_METRICS = {"ou": "OU_PCT", "availability": "AVAILABILITY_PCT", "oee": "OEE_PCT", "yield": "YIELD_PCT"}
MAX_PAGE_SIZE = 1000
HEAT_MAX_MACHINES = 100  # a heatmap of thousands of rows is unreadable and slow to draw
_loader = SQLLoader("duckdb")


def _filters(sel: ResourceSelection, *, machines: bool = True) -> tuple[str, dict[str, Any]]:
    qb = QueryBuilder(prefix="v")
    if machines and sel.machines:
        qb.add_in_condition("RESOURCENAME", list(sel.machines))
    if sel.period is not None:
        qb.add("PERIOD = :v_period", v_period=sel.period)
    return qb.condition_sql(), qb.params


def _aggregate(
    query_id: str, grouping: str, sel: ResourceSelection, *, machines: bool = True, name: str = "aggregate",
    params: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], DatasetInfo]:
    condition, bound = _filters(sel, machines=machines)
    sql = _loader.load(f"resource_views/{name}", keys=KEYS[grouping], bucket=BUCKETS[sel.granularity],
                       filters=condition)
    return query_dataset(PREFIX, query_id, sql, {**bound, **(params or {})})


def metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    """An aggregate row as hours per state, totals, quantities and percentages."""
    def num(key: str) -> float | None:
        value = row.get(key)
        return None if value is None else float(value)

    return {
        **{f"{s.lower()}_hours": num(s) for s in STATES},
        "loading_hours": num("LOADING_HOURS"),
        "total_hours": num("TOTAL_HOURS"),
        "output_qty": num("OUTPUT_QTY"),
        "ng_qty": num("NG_QTY"),
        "ou_pct": num("OU_PCT"),
        "availability_pct": num("AVAILABILITY_PCT"),
        "yield_pct": num("YIELD_PCT"),
        "oee_pct": num("OEE_PCT"),
        "machines": int(row.get("MACHINES") or 0),
    }


def _machine(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "machine": row["RESOURCENAME"],
        "resource_id": row["RESOURCEID"],
        "workcenter_group": row["WORKCENTER_GROUP"],
        "family": row["RESOURCEFAMILYNAME"],
        "location": row["LOCATIONNAME"],
    }


def summary(query_id: str, sel: ResourceSelection) -> dict[str, Any]:
    """Hours per state and the E10 percentages over the whole selection."""
    rows, info = _aggregate(query_id, "total", sel)
    empty = {"MACHINES": 0, **dict.fromkeys(STATES, 0.0), "OUTPUT_QTY": 0.0, "NG_QTY": 0.0}
    return envelope(info, sel, summary=metrics(rows[0] if rows else empty))


def trend(query_id: str, sel: ResourceSelection) -> dict[str, Any]:
    """Per period: hours per state (the stacked chart) and the percentages (the trend)."""
    rows, info = _aggregate(query_id, "period", sel.model_copy(update={"period": None}))
    points = [{"period": row["PERIOD"].isoformat(), **metrics(row)} for row in rows]
    return envelope(info, sel, points=sorted(points, key=lambda p: p["period"]))


def heatmap(
    query_id: str, sel: ResourceSelection, metric: str = "ou", limit: int = HEAT_MAX_MACHINES
) -> dict[str, Any]:
    """Machines × periods of one percentage — the ``limit`` machines with the most hours,
    by name; the machine selection is ignored so a clicked machine stays in context."""
    if metric not in HEAT_METRICS:
        raise ValidationFailed(f"metric must be one of {', '.join(HEAT_METRICS)}")
    whole = sel.model_copy(update={"period": None})
    rows, info = _aggregate(query_id, "machine_period", whole, machines=False)
    hours: dict[str, float] = {}
    for row in rows:
        hours[row["RESOURCENAME"]] = hours.get(row["RESOURCENAME"], 0.0) + float(row["TOTAL_HOURS"] or 0)
    machines = sorted(sorted(hours, key=lambda m: (-hours[m], m))[:limit])
    periods = sorted({row["PERIOD"].isoformat() for row in rows})
    column = {p: i for i, p in enumerate(periods)}
    line = {m: i for i, m in enumerate(machines)}
    z: list[list[float | None]] = [[None] * len(periods) for _ in machines]
    for row in rows:
        if row["RESOURCENAME"] in line:
            value = row[HEAT_METRICS[metric]]
            z[line[row["RESOURCENAME"]]][column[row["PERIOD"].isoformat()]] = (
                None if value is None else float(value)
            )
    return envelope(info, sel, metric=metric, periods=periods, machines=machines, z=z,
                    machines_total=len(hours))


def detail(query_id: str, sel: ResourceSelection, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    """One page of machine × period rows (by machine, then period), with the total."""
    check_page(page, page_size, MAX_PAGE_SIZE)
    window = row_window(page, page_size)
    rows, info = _aggregate(query_id, "machine_period", sel, name="detail", params=window)
    total = int(rows[0]["TOTAL__"]) if rows else 0
    out = [{**_machine(r), "period": r["PERIOD"].isoformat(), **metrics(r)} for r in rows]
    return envelope(info, sel, page=page, page_size=page_size, total=total, rows=out)


def export_csv(query_id: str, sel: ResourceSelection) -> Iterator[bytes]:
    """Machine × period rows with every state's hours, quantities and percentages."""
    condition, bound = _filters(sel)
    sql = _loader.load("resource_views/detail", keys=KEYS["machine_period"], bucket=BUCKETS[sel.granularity],
                       filters=condition)
    return dataset_csv(PREFIX, query_id, sql, {**bound, "first_row": 1, "last_row": 2**62})
