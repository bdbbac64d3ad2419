"""Submit, run, read and cancel jobs — on RQ with Redis, on an in-process pool without."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mesdash.core.cache.keys import query_hash
from mesdash.core.jobs.context import JobCancelled, JobContext, worker_name
from mesdash.core.jobs.model import (
    ACTIVE,
    CANCELLED,
    FAILED,
    FINISHED,
    JOB_TIMEOUT,
    QUEUED,
    RESUBMITTABLE,
    STARTED,
    JobKind,
    map_rq_state,
    progress_dict,
    public_status,
)
from mesdash.core.jobs.store import ABSENT, JobStore, get_store
from mesdash.core.redact import redact
from mesdash.core.redis_client import get_redis
from mesdash.core.resilience.errors import JobNotFinished, MesdashError, NotFound
from mesdash.settings import get_settings

log = logging.getLogger(__name__)
RQ_ENTRY = "mesdash.core.jobs.runner.run_rq_job"
PARAMS_GRACE_SECONDS = 3600  # a job's parameters outlive its timeout + TTL by this much
FORKING_WORKER_PID: int | None = None  # set by `mesdash worker` when RQ forks a horse per job


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def job_id_for(kind: JobKind, params: Mapping[str, Any]) -> str:
    """``{kind}-{query_hash(params)}``: equal (normalized) requests get equal ids."""
    return f"{kind.name}-{query_hash(params)}"


def rq_queue_name(queue: str) -> str:
    """RQ queue of one of ``QUEUES`` inside this deployment's namespace."""
    return f"{get_settings().namespace}:{queue}"


def rq_job_id(job_id: str, attempt: int) -> str:
    """RQ's id for one attempt of our job: namespaced (two namespaces never share one) and
    per attempt (a re-run never meets the previous attempt's RQ leftovers)."""
    tag = hashlib.sha256(get_settings().namespace.encode()).hexdigest()[:8]
    return f"{tag}_{job_id}_a{attempt}"


@dataclass(frozen=True)
class Submitted:
    job_id: str
    kind: str
    created: bool  # False: an identical request was already queued, running or finished
    record: dict[str, Any]

    def accepted_body(self) -> dict[str, Any]:
        """The 202 body: ``{job_id, kind, status_url, stream_url|null, result_url}``."""
        return {"job_id": self.job_id, "kind": self.kind, **self.record["urls"]}


# ------------------------------------------------------------------------------ submit ----
def submit(
    kind: JobKind, params: Mapping[str, Any], *, timeout: int | None = None, ttl: int | None = None
) -> Submitted:
    """Queue ``kind.func(ctx, params)`` under its deterministic id, unless an identical
    request is queued, running or finished (then that job is returned). A failed or
    cancelled one is re-run with ``attempt + 1`` (its function may resume)."""
    settings = get_settings()
    store = get_store()
    job_id = job_id_for(kind, params)
    previous = store.get(job_id)
    if previous is not None:
        previous = reconcile(store, previous)
    run_seconds = int(timeout or settings.job_timeout_seconds)
    keep_seconds = int(ttl or settings.job_ttl_seconds)
    record: dict[str, Any] = {
        "id": job_id,
        "kind": kind.name,
        "queue": kind.queue,
        "func": kind.func,
        "status": QUEUED,
        "progress": progress_dict(stage="queued"),
        "error": None,
        "result": None,
        "urls": kind.urls(job_id),
        "attempt": int(previous.get("attempt", 0)) + 1 if previous else 1,
        "created_at": _now(),
        "started_at": None,
        "ended_at": None,
        "heartbeat_at": None,
        "timeout": run_seconds,
        "ttl": keep_seconds,
    }
    if not store.update(job_id, record, when=(ABSENT, *RESUBMITTABLE), replace=True):
        current = store.get(job_id) or record
        return Submitted(job_id, kind.name, False, current)
    store.put_params(job_id, params, run_seconds + keep_seconds + PARAMS_GRACE_SECONDS)
    _dispatch(record)
    return Submitted(job_id, kind.name, True, record)


def _dispatch(record: dict[str, Any]) -> None:
    client = get_redis()
    if client is None:
        _pool().submit(execute, record["id"])
        return
    from rq import Queue

    rq_id = rq_job_id(record["id"], record["attempt"])
    Queue(rq_queue_name(record["queue"]), connection=client).enqueue_call(
        RQ_ENTRY,
        args=(record["id"],),
        job_id=rq_id,
        timeout=record["timeout"],
        result_ttl=record["ttl"],
        failure_ttl=record["ttl"],
        description=f"{record['kind']} {record['id']}",
    )


_pool_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _pool_lock:
        if _executor is None:
            from mesdash.core.jobs.watchdog import start_watchdog

            workers = max(1, get_settings().job_inprocess_workers)
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="mesdash-job")
            start_watchdog()  # this process runs jobs: it also sweeps them and cleans results
        return _executor


# ----------------------------------------------------------------------------- execute ----
def _function(path: str) -> Callable[[JobContext, dict[str, Any]], Any]:
    module, name = path.split(":", 1)
    func: Callable[[JobContext, dict[str, Any]], Any] = getattr(importlib.import_module(module), name)
    return func


def _fail(store: JobStore, record: dict[str, Any], code: str, detail: str) -> None:
    store.update(
        record["id"],
        {"status": FAILED, "error": {"code": code, "detail": redact(detail)}, "ended_at": _now()},
        when=(STARTED,),
        ttl=record["ttl"],
    )


def execute(job_id: str, *, reraise: bool = False, parent_pid: int | None = None) -> Any:
    """Run one job (in a worker or an in-process thread): started → finished | failed.
    A job cancelled or declared dead meanwhile keeps that status."""
    store = get_store()
    record = store.get(job_id)
    claimed = {
        "status": STARTED, "started_at": _now(), "started_ts": time.time(),
        "heartbeat_at": time.time(), "worker": worker_name(),
    }
    if record is None or not store.update(job_id, claimed, when=(QUEUED,)):
        log.info("job %s not run: no longer queued", job_id)
        return None
    record.update(claimed)
    ctx = JobContext(store, record, parent_pid, params=store.get_params(job_id) or {})
    ctx.start_heartbeat()
    try:
        result = _function(record["func"])(ctx, ctx.params)
    except JobCancelled:
        log.info("job %s stopped: cancelled or declared dead", job_id)
        return None
    except MesdashError as exc:
        _fail(store, record, exc.code, exc.detail)
        if reraise:
            raise
        return None
    except Exception as exc:
        code = JOB_TIMEOUT if type(exc).__name__ == "JobTimeoutException" else "INTERNAL_ERROR"
        log.exception("job %s failed", job_id)
        _fail(store, record, code, f"{type(exc).__name__}: {exc}")
        if reraise:
            raise
        return None
    finally:
        ctx.stop_heartbeat()
    progress = ctx.current_progress
    done = {
        "status": FINISHED,
        "result": result,
        "ended_at": _now(),
        "progress": {**progress, "pct": 100.0, "stage": "finished"},
    }
    store.update(job_id, done, when=(STARTED,), ttl=record["ttl"])
    return None


def run_rq_job(job_id: str) -> None:
    """What an RQ worker runs: ``execute`` with errors re-raised so RQ's state agrees; in
    a forked work horse, the horse exits when its worker process dies."""
    worker = FORKING_WORKER_PID
    execute(job_id, reraise=True, parent_pid=worker if worker and worker != os.getpid() else None)


# ---------------------------------------------------------------------- read and cancel ----
def reconcile(store: JobStore, record: dict[str, Any]) -> dict[str, Any]:
    """Watchdog on one record: a started job without a fresh heartbeat failed (its worker
    died); an active job that RQ saw fail or stop failed too. Returns the current record."""
    if record["status"] not in ACTIVE:
        return record
    settings = get_settings()
    stale = settings.job_heartbeat_stale_seconds
    beat = record.get("heartbeat_at")
    if record["status"] == STARTED and beat is not None and time.time() - float(beat) > stale:
        detail = (
            f"worker {record.get('worker', '?')} stopped sending heartbeats "
            f"(none for {time.time() - float(beat):.0f} s; the worker process died or hung)"
        )
        _declare_failed(store, record, "WORKER_LOST", detail, when=STARTED)
        return store.get(record["id"]) or record
    began = record.get("started_ts")
    if record["status"] == STARTED and began and time.time() - float(began) > record["timeout"] + stale:
        # RQ stops its own jobs at the timeout; in-process jobs stop at their next checkpoint
        detail = f"the job ran longer than its timeout of {record['timeout']} s"
        _declare_failed(store, record, JOB_TIMEOUT, detail, when=STARTED)
        return store.get(record["id"]) or record
    rq_status, rq_error = _rq_state(record)
    if rq_status == FAILED:
        detail = rq_error or "the queue reports the job failed"
        _declare_failed(store, record, "WORKER_LOST", detail, when=None)
        return store.get(record["id"]) or record
    if rq_status == CANCELLED:
        store.update(record["id"], {"status": CANCELLED, "ended_at": _now()}, when=ACTIVE,
                     ttl=int(record.get("ttl") or 0))
        return store.get(record["id"]) or record
    return record


def _declare_failed(
    store: JobStore, record: dict[str, Any], code: str, detail: str, when: str | None
) -> None:
    fields = {"status": FAILED, "error": {"code": code, "detail": detail}, "ended_at": _now()}
    allowed = (when,) if when else ACTIVE
    if store.update(record["id"], fields, when=allowed, ttl=int(record.get("ttl") or 0)):
        log.warning("job %s failed: %s", record["id"], detail)


def _rq_state(record: dict[str, Any]) -> tuple[str | None, str | None]:
    client = get_redis()
    if client is None:
        return None, None
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(rq_job_id(record["id"], int(record.get("attempt", 1))), connection=client)
        state = map_rq_state(job.get_status(refresh=False))
    except (NoSuchJobError, ValueError):
        return None, None
    error = None
    if state == FAILED:
        info = job.exc_info or ""
        error = redact(info.strip().splitlines()[-1]) if info.strip() else "stopped by the queue"
    return state, error


def get_record(job_id: str) -> dict[str, Any]:
    store = get_store()
    record = store.get(job_id)
    if record is None:
        raise NotFound(f"no job {job_id!r} (unknown, or its results expired)")
    return reconcile(store, record)


def job_status(job_id: str) -> dict[str, Any]:
    """``{job_id, kind, status, progress, error?, result?, …urls}``."""
    return public_status(get_record(job_id))


def job_result(job_id: str) -> Any:
    """The job function's return value; 409 ``JOB_NOT_FINISHED`` before the end."""
    record = get_record(job_id)
    if record["status"] != FINISHED:
        raise JobNotFinished(
            f"job {job_id} is {record['status']}", extra={"job_status": public_status(record)}
        )
    return record.get("result")


def cancel(job_id: str) -> dict[str, Any]:
    """Cancel a queued or running job (a running one stops at its next checkpoint);
    a finished, failed or cancelled job is left as it is. Returns the status."""
    store = get_store()
    record = get_record(job_id)
    fields = {"status": CANCELLED, "ended_at": _now(), "error": None}
    if store.update(job_id, fields, when=ACTIVE, ttl=int(record.get("ttl") or 0)):
        _rq_cancel(record)
    return job_status(job_id)


def _rq_cancel(record: dict[str, Any]) -> None:
    client = get_redis()
    if client is None:
        return
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(rq_job_id(record["id"], int(record.get("attempt", 1))), connection=client)
        if map_rq_state(job.get_status()) == QUEUED:
            job.cancel()
    except (NoSuchJobError, InvalidJobOperation, ValueError):
        pass
