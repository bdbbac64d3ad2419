"""Long reject-history queries as jobs (``core.jobs``): above
``BATCH_QUERY_TIME_THRESHOLD_DAYS`` days or more than one batch of lots, ``POST …/query``
answers 202 and a ``reports`` worker builds the dataset chunk by chunk, with progress."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from mesdash.core.batch import Chunk
from mesdash.core.batch.dataset import dataset_info
from mesdash.core.db import get_warehouse
from mesdash.core.jobs import FAILED, FINISHED, JobContext, JobKind, Submitted, job_id_for, submit
from mesdash.core.jobs.store import get_store
from mesdash.reports.reject import service, views
from mesdash.reports.reject.schemas import RejectQuery
from mesdash.settings import get_settings

REJECT_JOB = JobKind(name="reject", queue="reports", func="mesdash.reports.reject.jobs:run_reject_job")


def submit_query(query: RejectQuery, today: date) -> Submitted:
    """The job of this request (an identical running or finished one is reused). A range
    that holds today keeps its finished job only as long as the open chunk is cached."""
    open_range = query.end_date is None or query.end_date >= today
    ttl = get_settings().batch_open_chunk_ttl if open_range else None
    params = {"request": query.model_dump(mode="json")}
    _retire_if_stale(job_id_for(REJECT_JOB, params))
    return submit(REJECT_JOB, params, ttl=ttl)


def _retire_if_stale(job_id: str) -> None:
    """A finished job whose dataset is gone (evicted, dropped) cannot answer the request any
    more: mark it failed (``CACHE_EXPIRED``) so the submit that follows runs it again."""
    store = get_store()
    record = store.get(job_id)
    if record is None or record.get("status") != FINISHED:
        return
    query_id = (record.get("result") or {}).get("query_id")
    if query_id and dataset_info(service.PREFIX, query_id) is not None:
        return
    error = {"code": "CACHE_EXPIRED", "detail": "the job's dataset expired; the request runs again"}
    store.update(
        job_id, {"status": FAILED, "error": error}, when=(FINISHED,), ttl=int(record.get("ttl") or 0)
    )


def run_reject_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Resolve (container mode), plan, run the chunks not cached yet, keep the dataset;
    returns what ``POST …/query`` answers for a short query."""
    query = RejectQuery.model_validate(params["request"])
    warehouse = get_warehouse()
    ctx.progress(stage="resolving lots" if query.mode == "container" else "planning")
    resolution = service.resolve_containers(query, warehouse)
    total = len(service.plan(query, resolution.container_ids))
    ctx.progress(total=total, completed=0, stage="querying")
    started = 0
    lock = threading.Lock()

    def on_chunk(_chunk: Chunk) -> None:
        nonlocal started
        with lock:
            ctx.progress(completed=started)  # raises JobCancelled once cancelled
            started += 1

    info = service.build_dataset(query, warehouse, resolution=resolution, on_chunk=on_chunk)
    failed = len(info.quality.get("failed_ranges", []))
    ctx.progress(completed=total - failed, failed=failed, stage="summarising")
    views.prime(info.query_id)
    ctx.progress(stage="done")
    return service.dataset_envelope(info)
