"""Jobs: one API for every long-running kind (trace, reports, defect analysis, query tool).

With ``MESDASH_REDIS_URL`` jobs run on RQ workers (``mesdash worker`` listens on the queues
``trace-events``, ``reports``, ``msd``, ``query-tool``); without Redis the same calls run them
on an in-process thread pool and keep records as JSON sidecar files in ``{spool}/jobs``.

- **Deterministic ids**: ``{kind}-{query_hash(params)}`` (``core.cache.keys``): an identical
  request while one is queued, running or finished (until its TTL) gets the same job; a
  failed or cancelled one is re-run under the same id with ``attempt + 1`` (no automatic RQ
  retries) — the job function resumes from what it left in ``ctx.result_dir``.
- **Status** (``GET /api/jobs/{id}``): ``{job_id, kind, status: queued|started|finished|failed|
  cancelled, progress: {total, completed, failed, pct, stage}, error?: {code, detail},
  result? (finished), attempt, created_at, started_at, ended_at, status_url, stream_url,
  result_url}``. ``DELETE /api/jobs/{id}`` cancels (a running job stops at its next
  ``ctx.progress``/``ctx.check``); ``GET /api/jobs/{id}/result`` → ``{job_id, result}`` or 409
  ``JOB_NOT_FINISHED``; unknown or expired ids → 404 ``NOT_FOUND``.
- **Liveness**: a running job's context refreshes a heartbeat every
  ``JOB_HEARTBEAT_SECONDS`` (10 s); a job without one for ``JOB_HEARTBEAT_STALE_SECONDS``
  (60 s) is failed with ``error.code == "WORKER_LOST"`` by the watchdog (each worker sweeps
  every ``JOB_WATCHDOG_INTERVAL_SECONDS``; every status read checks too). RQ states map:
  queued/deferred/scheduled → queued, started → started, finished → finished,
  failed/stopped → failed, canceled → cancelled. Exceptions in the job: a ``MesdashError``
  gives ``error.code`` = its code; anything else ``INTERNAL_ERROR`` (``JOB_TIMEOUT`` past
  the kind's timeout).
- **TTL**: a finished / failed / cancelled job's record lives ``ttl`` seconds (default
  ``JOB_TTL_SECONDS``); ``watchdog.cleanup_results`` then removes its ``result_dir``.

Usage — a report service::

    from mesdash.core.jobs import JobKind, submit

    REJECT_JOB = JobKind(
        name="reject",                       # job ids look like "reject-3f2a…"
        queue="reports",                     # one of QUEUES
        func="mesdash.reports.reject.jobs:run_reject_job",   # (ctx, params) -> JSON-able
        # result_url defaults to "/api/jobs/{job_id}/result"; stream_url to None
    )

    def start(params: dict) -> Response:     # in a route: answer 202
        submitted = submit(REJECT_JOB, params, timeout=1800, ttl=3600)  # both optional
        return accepted_response(submitted)  # 202 {job_id, kind, status_url, stream_url, result_url}

The job function (runs in a worker, or a thread without Redis)::

    def run_reject_job(ctx: JobContext, params: dict) -> dict:
        chunks = plan(params)
        ctx.progress(total=len(chunks), completed=0, stage="querying")
        for i, chunk in enumerate(chunks, 1):
            run(chunk)                        # files go under ctx.result_dir if needed
            ctx.progress(completed=i)         # also raises JobCancelled once cancelled
        return {"query_id": "…"}             # stored; GET /api/jobs/{id}/result gives it back

A caller (Python)::

    job_status(job_id)   # the status body above (NotFound → 404)
    job_result(job_id)   # the returned value, or JobNotFinished (409) before the end
    cancel(job_id)       # status after cancelling

Tests: ``MESDASH_REDIS_URL`` set → run an RQ worker (``mesdash worker --burst --simple`` as a
subprocess, or ``rq.SimpleWorker([rq_queue_name(q)], connection=…).work(burst=True)``);
unset → jobs run in process (poll ``job_status`` until ``finished``).
"""

from __future__ import annotations

from fastapi.responses import Response

from mesdash.core.jobs.context import JobCancelled, JobContext, result_dir
from mesdash.core.jobs.model import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    QUEUES,
    STARTED,
    STATUSES,
    JobKind,
    map_rq_state,
    progress_dict,
)
from mesdash.core.jobs.runner import (
    Submitted,
    cancel,
    execute,
    get_record,
    job_id_for,
    job_result,
    job_status,
    rq_queue_name,
    submit,
)
from mesdash.core.resilience.problem import jsonable_bytes


def accepted_response(submitted: Submitted) -> Response:
    """HTTP 202 with ``{job_id, kind, status_url, stream_url|null, result_url}``."""
    return Response(
        jsonable_bytes(submitted.accepted_body()),
        status_code=202,
        media_type="application/json",
        headers={"Location": submitted.record["urls"]["status_url"]},
    )


__all__ = [
    "CANCELLED",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "QUEUES",
    "STARTED",
    "STATUSES",
    "JobCancelled",
    "JobContext",
    "JobKind",
    "Submitted",
    "accepted_response",
    "cancel",
    "execute",
    "get_record",
    "job_id_for",
    "job_result",
    "job_status",
    "map_rq_state",
    "progress_dict",
    "result_dir",
    "rq_queue_name",
    "submit",
]
