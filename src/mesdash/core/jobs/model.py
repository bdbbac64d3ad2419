"""Job kinds, the one status vocabulary, progress, and the RQ state mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

QUEUED, STARTED, FINISHED, FAILED, CANCELLED = "queued", "started", "finished", "failed", "cancelled"
STATUSES = (QUEUED, STARTED, FINISHED, FAILED, CANCELLED)
ACTIVE = (QUEUED, STARTED)
TERMINAL = (FINISHED, FAILED, CANCELLED)
RESUBMITTABLE = (FAILED, CANCELLED)  # a new submit of the same request re-runs (and resumes) these
QUEUES = ("trace-events", "reports", "msd", "query-tool")

# RQ's states → ours (design, Decisions · Jobs and results).
RQ_STATES: dict[str, str] = {
    "created": QUEUED,
    "queued": QUEUED,
    "deferred": QUEUED,
    "scheduled": QUEUED,
    "ready_to_enqueue": QUEUED,
    "rate_limited": QUEUED,
    "started": STARTED,
    "finished": FINISHED,
    "failed": FAILED,
    "stopped": FAILED,
    "canceled": CANCELLED,
}

WORKER_LOST = "WORKER_LOST"  # error code of a job whose worker stopped sending heartbeats
JOB_TIMEOUT = "JOB_TIMEOUT"  # error code of a job that ran past its kind's timeout


def map_rq_state(state: str) -> str:
    """Our status for an RQ job state (``JobStatus`` value or its string)."""
    value = getattr(state, "value", state)
    try:
        return RQ_STATES[str(value)]
    except KeyError:
        raise ValueError(f"unknown RQ job state {value!r}") from None


@dataclass(frozen=True)
class JobKind:
    """What a slice registers once: a name, its queue, the function a worker runs, its URLs.

    ``func`` is a dotted path ``package.module:function`` taking ``(ctx, params)`` and
    returning a small JSON-able result (or None). URL templates take ``{job_id}``.
    """

    name: str
    queue: str
    func: str
    result_url: str = "/api/jobs/{job_id}/result"
    stream_url: str | None = None
    status_url: str = "/api/jobs/{job_id}"

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"queue must be one of {QUEUES}, not {self.queue!r}")
        if ":" not in self.func:
            raise ValueError("func must be 'package.module:function'")

    def urls(self, job_id: str) -> dict[str, str | None]:
        return {
            "status_url": self.status_url.format(job_id=job_id),
            "stream_url": self.stream_url.format(job_id=job_id) if self.stream_url else None,
            "result_url": self.result_url.format(job_id=job_id),
        }


def progress_dict(
    total: int = 0, completed: int = 0, failed: int = 0, stage: str = ""
) -> dict[str, Any]:
    """``{total, completed, failed, pct, stage}``; pct counts finished (ok or failed) units."""
    done = completed + failed
    pct = round(min(100.0, 100.0 * done / total), 1) if total > 0 else 0.0
    return {"total": total, "completed": completed, "failed": failed, "pct": pct, "stage": stage}


def public_status(record: Mapping[str, Any]) -> dict[str, Any]:
    """The status body every job route answers (``GET /api/jobs/{id}``)."""
    body: dict[str, Any] = {
        "job_id": record["id"],
        "kind": record["kind"],
        "status": record["status"],
        "progress": record.get("progress") or progress_dict(),
        "attempt": record.get("attempt", 1),
        "created_at": record.get("created_at"),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        **(record.get("urls") or {}),
    }
    if record.get("error"):
        body["error"] = record["error"]
    if record["status"] == FINISHED and record.get("result") is not None:
        body["result"] = record["result"]
    return body
