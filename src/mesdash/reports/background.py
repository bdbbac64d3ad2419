"""Long report queries as jobs: a range above ``REPORT_JOB_THRESHOLD_DAYS`` answers 202 and
builds its dataset on a worker (the ``reports`` queue; a thread without Redis).

The job function runs the report's own ``build`` with a query function that counts chunks
into the job's progress; its result is the dataset's ``query_id`` (plus rows, chunks,
quality), which every view then reads like after a synchronous query. A cancelled job makes
its remaining chunks fail fast and stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from fastapi.responses import Response

from mesdash.core.batch import Chunk
from mesdash.core.batch.dataset import DatasetInfo, dataset_info
from mesdash.core.db.warehouse import get_warehouse
from mesdash.core.jobs import CANCELLED, FINISHED, JobContext, JobKind, accepted_response, submit
from mesdash.core.jobs.store import get_store
from mesdash.reports.params import DateRange, QueryFn, dataset_fields, time_plan
from mesdash.settings import get_settings

JOB_FUNC = "mesdash.reports.background:run_report_job"
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "A range above REPORT_JOB_THRESHOLD_DAYS: a job builds the dataset; "
                         "poll status_url, the result holds the query_id"}
}
KINDS = {name: JobKind(name=name, queue="reports", func=JOB_FUNC)
         for name in ("hold-history", "resource-history", "job-query")}


def _reports() -> dict[str, tuple[type[DateRange], Callable[..., DatasetInfo]]]:
    """Report name → (its request model, its ``build(query, wh, *, wrap=…)``)."""
    from mesdash.reports.hold import service as hold
    from mesdash.reports.jobs import service as jobs
    from mesdash.reports.resource import service as resource

    return {
        "hold-history": (hold.HoldQuery, hold.build),
        "resource-history": (resource.ResourceQuery, resource.build),
        "job-query": (jobs.JobQuery, jobs.build),
    }


def runs_as_job(query: DateRange) -> bool:
    return query.days > get_settings().report_job_threshold_days


def start(report: str, query: DateRange, prefix: str, query_id: str) -> Response:
    """202 with the job's URLs (an identical request gets the same job). A finished job whose
    dataset has expired since (or lived in another process's memory) is run again."""
    kind = KINDS[report]
    params = {"report": report, "query": query.model_dump(mode="json")}
    submitted = submit(kind, params)
    if submitted.record.get("status") == FINISHED and dataset_info(prefix, query_id) is None:
        get_store().update(submitted.job_id, {"status": CANCELLED}, when=(FINISHED,))
        submitted = submit(kind, params)
    return accepted_response(submitted)


def _counting(fn: QueryFn, ctx: JobContext, total: int) -> QueryFn:
    lock = threading.Lock()
    done = [0]

    def run(chunk: Chunk, max_rows: int | None) -> pa.Table:
        if ctx.cancelled:
            raise RuntimeError("job cancelled")  # the engine marks the chunk failed and moves on
        table = fn(chunk, max_rows)
        with lock:
            done[0] += 1
            ctx.progress(completed=min(done[0], total))
        return table

    return run


def run_report_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Job function: build the report's dataset; returns its ``query_id`` and shape."""
    model, build = _reports()[params["report"]]
    query = model.model_validate(params["query"])
    total = len(time_plan(query))
    ctx.progress(total=total, completed=0, stage="querying")
    info = build(query, get_warehouse(), wrap=lambda fn: _counting(fn, ctx, total))
    ctx.progress(completed=total, stage="done")  # cached chunks were not counted; raises if cancelled
    return dataset_fields(info)
