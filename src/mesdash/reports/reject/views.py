"""Reject-history views, each computed from the cached dataset of a ``query_id`` only.

Cross-filter selections (``ViewFilters``) narrow every view; a dimension's own pareto
ignores its own selection so the clicked bar stays in context. Dimensions, measures, trend
buckets and sort columns come from allow-lists; values are always bind parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import DatasetInfo, query_view
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.factory_day import SHIFT
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.reports.params import check_page, order_by
from mesdash.reports.reject.service import PREFIX, SCHEMA

DIMENSIONS = {
    "reason": "LOSSREASONNAME",
    "package": "PRODUCTLINENAME",
    "type": "PJ_TYPE",
    "workcenter_group": "WORKCENTER_GROUP",
    "machine": "EQUIPMENTNAME",
}
MEASURES = {
    "charged_off": "CHARGED_OFF_QTY",
    "defect": "COALESCE(DEFECTQTY, 0)",
    "total": "CHARGED_OFF_QTY + COALESCE(DEFECTQTY, 0)",
}
BUCKETS = {"day": "FDAY", "week": "DATE_TRUNC('week', FDAY)", "month": "DATE_TRUNC('month', FDAY)"}
SORTABLE = frozenset(SCHEMA.names)
TIE_BREAK = ", ".join(SCHEMA.names)  # reason rows of one event can tie on any few keys
TOP_SHARE = 0.8
MAX_PAGE_SIZE = 1000
_loader = SQLLoader("duckdb")


@dataclass(frozen=True)
class ViewFilters:
    """Cross-filter selections: empty means no selection on that dimension."""

    reason: tuple[str, ...] = ()
    package: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    workcenter_group: tuple[str, ...] = ()
    machine: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, Sequence[str]] | None = None) -> ViewFilters:
        values = dict(values or {})
        unknown = set(values) - set(DIMENSIONS)
        if unknown:
            raise ValidationFailed(f"unknown filter(s): {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(dict.fromkeys(str(v) for v in vs)) for k, vs in values.items()})

    def without(self, dimension: str) -> ViewFilters:
        return replace(self, **{dimension: ()})

    def condition(self) -> tuple[str, dict[str, Any]]:
        qb = QueryBuilder(prefix="v")
        for f in fields(self):
            selected = getattr(self, f.name)
            if selected:
                qb.add_in_condition(DIMENSIONS[f.name], list(selected))
        return qb.condition_sql(), qb.params


def _run(
    query_id: str, name: str, params: Mapping[str, Any], **slots: str
) -> tuple[list[dict[str, Any]], DatasetInfo]:
    return query_view(PREFIX, query_id, _loader.load(f"reject_views/{name}", **slots), params)


def _envelope(query_id: str, info: DatasetInfo, **body: Any) -> dict[str, Any]:
    return {"query_id": query_id, "as_of": info.as_of, "quality": info.quality, **body}


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def summary(query_id: str, filters: ViewFilters | None = None) -> dict[str, Any]:
    """Charged-off vs not-charged-off, share, move-in once per event, affected lots / WOs."""
    condition, params = (filters or ViewFilters()).condition()
    [values], info = _run(query_id, "summary", params, filters=condition)
    charged, defect = float(values["CHARGED_OFF_QTY"]), float(values["DEFECT_QTY"])
    movein, total = float(values["MOVEIN_QTY"]), charged + defect
    return _envelope(
        query_id,
        info,
        summary={
            "charged_off_qty": charged,
            "not_charged_off_qty": defect,
            "total_qty": total,
            "charged_off_share": _ratio(charged, total),
            "movein_qty": movein,
            "charged_off_rate": _ratio(charged, movein),
            "defect_rate": _ratio(defect, movein),
            "affected_lots": int(values["AFFECTED_LOTS"]),
            "affected_work_orders": int(values["AFFECTED_WORK_ORDERS"]),
            "events": int(values["EVENT_COUNT"]),
            "rows": int(values["ROW_COUNT"]),
        },
    )


def pareto(
    query_id: str,
    dimension: str,
    filters: ViewFilters | None = None,
    measure: str = "charged_off",
    top80_only: bool = False,
) -> dict[str, Any]:
    """Items of ``dimension`` by ``measure``, biggest first, cumulative %, top-80 % flag;
    ``top80_only`` keeps the items that make up the first 80 % (the "top-80 % scope")."""
    if dimension not in DIMENSIONS or measure not in MEASURES:
        raise ValidationFailed(
            f"dimension must be one of {sorted(DIMENSIONS)}, measure of {sorted(MEASURES)}"
        )
    condition, params = (filters or ViewFilters()).without(dimension).condition()
    rows, info = _run(
        query_id,
        "pareto",
        params,
        dimension=DIMENSIONS[dimension],
        measure=MEASURES[measure],
        filters=condition,
    )
    items = []
    for row in rows:
        qty, cum, whole = float(row["QTY"]), float(row["CUM_QTY"]), float(row["ALL_QTY"])
        items.append(
            {
                "item": row["ITEM"],
                "qty": qty,
                "charged_off_qty": float(row["CHARGED_OFF_QTY"]),
                "not_charged_off_qty": float(row["DEFECT_QTY"]),
                "lots": int(row["LOTS"]),
                "share": _ratio(qty, whole),
                "cumulative_pct": 100 * cum / whole if whole else None,
                "top80": bool(whole) and (cum - qty) / whole < TOP_SHARE,
            }
        )
    scope = "top80" if top80_only else "all"
    if top80_only:
        items = [item for item in items if item["top80"]]
    return _envelope(query_id, info, dimension=dimension, measure=measure, scope=scope, items=items)


def trend(query_id: str, granularity: str = "day", filters: ViewFilters | None = None) -> dict[str, Any]:
    """Per factory day / week / month: charged-off, not-charged-off, move-in, rates, lots."""
    if granularity not in BUCKETS:
        raise ValidationFailed(f"granularity must be one of {sorted(BUCKETS)}")
    condition, params = (filters or ViewFilters()).condition()
    rows, info = _run(
        query_id, "trend", {**params, "shift": SHIFT}, bucket=BUCKETS[granularity], filters=condition
    )
    points = [
        {
            "bucket": str(row["BUCKET"])[:10],  # an ISO date (rows are JSON-native)
            "charged_off_qty": float(row["CHARGED_OFF_QTY"]),
            "not_charged_off_qty": float(row["DEFECT_QTY"]),
            "movein_qty": float(row["MOVEIN_QTY"]),
            "charged_off_rate": _ratio(float(row["CHARGED_OFF_QTY"]), float(row["MOVEIN_QTY"])),
            "lots": int(row["LOTS"]),
        }
        for row in rows
    ]
    return _envelope(query_id, info, granularity=granularity, points=points)


def _order(sort: str) -> str:
    """``-TXNDATE,CONTAINERID`` → an ORDER BY from the allow-list, plus the tie-breaker."""
    return order_by(sort, SORTABLE, TIE_BREAK)


def rows_page(
    query_id: str,
    page: int = 1,
    page_size: int = 100,
    sort: str = "-TXNDATE",
    filters: ViewFilters | None = None,
) -> dict[str, Any]:
    """One page of rows (1-based), sorted from the allow-list, with the total count."""
    check_page(page, page_size, MAX_PAGE_SIZE)
    condition, params = (filters or ViewFilters()).condition()
    paging = {"skip_rows": (page - 1) * page_size, "page_rows": page_size}
    rows, info = _run(query_id, "rows", {**params, **paging}, order=_order(sort), filters=condition)
    [count], _info = _run(query_id, "count", params, filters=condition)
    total = int(count["ROW_COUNT"])
    return _envelope(query_id, info, page=page, page_size=page_size, total=total, sort=sort, rows=rows)


def export_csv(
    query_id: str, sort: str = "TXNDATE", filters: ViewFilters | None = None, batch_rows: int = 10_000
) -> Iterator[bytes]:
    """The full column set as CSV (UTF-8 with BOM), streamed in batches; an expired dataset
    raises ``CacheExpired`` before the first byte."""
    condition, params = (filters or ViewFilters()).condition()
    sql = _loader.load("reject_views/export", order=_order(sort), filters=condition)
    return dataset_csv(PREFIX, query_id, sql, params, batch_rows=batch_rows)


FIRST_LOAD_PARETOS = ("reason", "package", "workcenter_group")  # reject_history.js, first load
FIRST_LOAD_PAGE_SIZE, FIRST_LOAD_SORT = 50, "-TXNDATE"


def prime(query_id: str) -> None:
    """Compute the views the page asks for first (no selection), so that its first load
    after a query is answered from the view cache."""
    summary(query_id)
    trend(query_id, "day")
    for dimension in FIRST_LOAD_PARETOS:
        pareto(query_id, dimension)
    rows_page(query_id, 1, FIRST_LOAD_PAGE_SIZE, FIRST_LOAD_SORT)


__all__ = ["DIMENSIONS", "ViewFilters", "export_csv", "pareto", "prime", "rows_page", "summary", "trend"]
