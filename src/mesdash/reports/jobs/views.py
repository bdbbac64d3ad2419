"""Equipment-jobs views, each computed with DuckDB from the cached dataset of a
``query_id``: a paged job list, breakdowns (per machine, status, model, cause), one job's
transactions and the job × transaction CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import query_dataset
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.resilience.errors import NotFound, ValidationFailed
from mesdash.reports.jobs.schemas import JobSelection
from mesdash.reports.jobs.service import PREFIX
from mesdash.reports.params import envelope, order_by, row_window

DIMENSIONS = {
    "machine": "RESOURCENAME",
    "status": "JOBSTATUS",
    "model": "JOBMODELNAME",
    "cause": "CAUSECODENAME",
}
SORTABLE = frozenset(("JOBID", "RESOURCENAME", "JOBSTATUS", "JOBMODELNAME", "JOBORDERNAME", "CREATEDATE",
                      "COMPLETEDATE", "CANCELDATE", "CAUSECODENAME", "JOB_HOURS", "TXN_COUNT"))
_loader = SQLLoader("duckdb")


def _filters(sel: JobSelection, skip: str | None = None) -> tuple[str, dict[str, Any]]:
    qb = QueryBuilder(prefix="v")
    for name, column, values in (
        ("machine", "RESOURCENAME", sel.machines),
        ("status", "JOBSTATUS", sel.statuses),
        ("model", "JOBMODELNAME", sel.models),
    ):
        if values and name != skip:
            qb.add_in_condition(column, list(values))
    return qb.condition_sql(), qb.params


def _order(sort: str) -> str:
    return order_by(sort, SORTABLE, "JOBID")


def jobs_page(
    query_id: str, sel: JobSelection, page: int = 1, page_size: int = 100, sort: str = "-CREATEDATE"
) -> dict[str, Any]:
    """One page of jobs (1-based) with transaction counts; ``total`` jobs, ``export_rows``
    job × transaction rows of the same selection (what the CSV holds)."""
    condition, params = _filters(sel)
    sql = _loader.load("jobs_views/jobs", order=_order(sort), filters=condition)
    rows, info = query_dataset(PREFIX, query_id, sql, {**params, **row_window(page, page_size)})
    total = int(rows[0]["TOTAL__"]) if rows else 0
    export_rows = int(rows[0]["EXPORT_TOTAL__"]) if rows else 0
    for row in rows:
        for helper in ("RN__", "TOTAL__", "EXPORT_TOTAL__"):
            row.pop(helper, None)
    return envelope(info, sel, page=page, page_size=page_size, total=total, export_rows=export_rows,
                    sort=sort, rows=rows)


def breakdown(query_id: str, sel: JobSelection, dimension: str = "machine") -> dict[str, Any]:
    """Jobs per machine / status / model / cause, most first; the dimension's own selection
    is ignored so a clicked bar stays in context."""
    if dimension not in DIMENSIONS:
        raise ValidationFailed(f"dimension must be one of {', '.join(DIMENSIONS)}")
    condition, params = _filters(sel, skip=dimension)
    sql = _loader.load("jobs_views/breakdown", dimension=DIMENSIONS[dimension], filters=condition)
    rows, info = query_dataset(PREFIX, query_id, sql, params)
    items = [
        {"item": r["ITEM"], "jobs": int(r["JOBS"]),
         "avg_hours": None if r["AVG_HOURS"] is None else float(r["AVG_HOURS"])}
        for r in rows
    ]
    return envelope(info, sel, dimension=dimension, items=items)


def transactions(query_id: str, job_id: str) -> dict[str, Any]:
    """The transactions of one job of the dataset, in time order."""
    sql = _loader.load("jobs_views/transactions", filters="JOBID = :job_id")
    rows, info = query_dataset(PREFIX, query_id, sql, {"job_id": job_id})
    if not rows:
        raise NotFound(f"job {job_id} is not part of dataset {query_id}")
    job = {k: rows[0][k] for k in ("JOBID", "RESOURCENAME", "JOBSTATUS", "JOBMODELNAME", "CREATEDATE")}
    txns = [r for r in rows if r["JOBTXNHISTORYID"] is not None]
    return envelope(info, job=job, transactions=txns)


def export_csv(query_id: str, sel: JobSelection) -> Iterator[bytes]:
    """Every job × transaction row of the selection, streamed."""
    condition, params = _filters(sel)
    return dataset_csv(PREFIX, query_id, _loader.load("jobs_views/transactions", filters=condition), params)
