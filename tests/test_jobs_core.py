"""The job runner (core/jobs): in process without Redis, on RQ with real Redis, watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mesdash.core.jobs import (
    JobKind,
    cancel,
    job_id_for,
    job_result,
    job_status,
    map_rq_state,
    progress_dict,
    rq_queue_name,
    submit,
)
from mesdash.core.jobs.watchdog import cleanup_results, sweep
from mesdash.core.resilience.errors import JobNotFinished, NotFound
from mesdash.settings import reset_settings

COUNT = JobKind("count", "reports", "job_funcs:count_to")
BAD = JobKind("bad", "msd", "job_funcs:bad_input")
CRASH = JobKind("crash", "query-tool", "job_funcs:crash")
TESTS_DIR = Path(__file__).parent


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(job_id: str, *statuses: str, timeout: float = 20.0) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (s := job_status(job_id))["status"] in statuses and s,
            timeout,
            f"job {job_id} to become {statuses}",
        )
    )


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESDASH_SPOOL_DIR", str(tmp_path / "spool"))
    reset_settings()
    return tmp_path / "spool"


# --------------------------------------------------------------------------- units ----------
def test_rq_states_map_to_one_vocabulary() -> None:
    expected = {
        "queued": "queued", "deferred": "queued", "scheduled": "queued", "started": "started",
        "finished": "finished", "failed": "failed", "stopped": "failed", "canceled": "cancelled",
    }
    assert {state: map_rq_state(state) for state in expected} == expected
    from rq.job import JobStatus

    assert map_rq_state(JobStatus.STOPPED) == "failed"
    with pytest.raises(ValueError):
        map_rq_state("exploded")


def test_progress_and_deterministic_ids() -> None:
    assert progress_dict(total=8, completed=3, failed=1, stage="x") == {
        "total": 8, "completed": 3, "failed": 1, "pct": 50.0, "stage": "x"
    }
    assert progress_dict()["pct"] == 0.0
    a = job_id_for(COUNT, {"ids": ["B", "A"], "n": 2})
    assert a == job_id_for(COUNT, {"n": 2, "ids": ["A", "B"]})
    assert a.startswith("count-") and len(a) == len("count-") + 16
    assert a != job_id_for(COUNT, {"ids": ["A", "B"], "n": 3})
    with pytest.raises(ValueError):
        JobKind("x", "nope", "a:b")


# ---------------------------------------------------------------------- in process ----------
def test_in_process_job_runs_reports_progress_and_result(spool: Path) -> None:
    submitted = submit(COUNT, {"n": 4})
    assert submitted.created
    body = submitted.accepted_body()
    assert body == {
        "job_id": submitted.job_id,
        "kind": "count",
        "status_url": f"/api/jobs/{submitted.job_id}",
        "stream_url": None,
        "result_url": f"/api/jobs/{submitted.job_id}/result",
    }
    status = wait_status(submitted.job_id, "finished")
    assert status["progress"] == {"total": 4, "completed": 4, "failed": 0, "pct": 100.0, "stage": "finished"}
    assert job_result(submitted.job_id) == {"sum": 6, "ran": [0, 1, 2, 3], "attempt": 1}
    assert (spool / "jobs" / f"{submitted.job_id}.json").exists()  # sidecar record
    again = submit(COUNT, {"n": 4})  # finished and not expired: the same job, not re-run
    assert (again.job_id, again.created) == (submitted.job_id, False)


def test_in_process_identical_running_request_gets_same_job_and_cancel(spool: Path) -> None:
    first = submit(COUNT, {"n": 50, "sleep": 0.05})
    wait_status(first.job_id, "started")
    second = submit(COUNT, {"sleep": 0.05, "n": 50})
    assert (second.job_id, second.created) == (first.job_id, False)
    with pytest.raises(JobNotFinished):
        job_result(first.job_id)
    assert cancel(first.job_id)["status"] == "cancelled"
    time.sleep(0.3)  # the job notices at its next checkpoint and stops
    final = job_status(first.job_id)
    assert final["status"] == "cancelled"
    ran = len(list((spool / "count" / first.job_id).glob("unit-*")))
    time.sleep(0.3)
    assert len(list((spool / "count" / first.job_id).glob("unit-*"))) == ran < 50  # it stopped
    resumed = submit(COUNT, {"n": 50, "sleep": 0.05})  # resubmitting resumes, same id
    assert resumed.created and resumed.job_id == first.job_id
    wait_status(first.job_id, "finished")
    result = job_result(first.job_id)
    assert result["attempt"] == 2 and result["ran"] == list(range(ran, 50))


def test_in_process_failures_carry_code_and_detail(spool: Path) -> None:
    bad = submit(BAD, {"n": 1})
    status = wait_status(bad.job_id, "failed")
    assert status["error"] == {"code": "VALIDATION_ERROR", "detail": "limit must be positive"}
    crashed = submit(CRASH, {})
    status = wait_status(crashed.job_id, "failed")
    assert status["error"]["code"] == "INTERNAL_ERROR"
    assert "RuntimeError: disk on fire" in status["error"]["detail"]
    with pytest.raises(NotFound):
        job_status("count-0000000000000000")


def test_jobs_api_status_result_cancel(spool: Path) -> None:
    from mesdash.app import create_app

    client = TestClient(create_app())
    assert client.get("/api/jobs/count-ffffffffffffffff").json()["code"] == "NOT_FOUND"
    slow = submit(COUNT, {"n": 40, "sleep": 0.05})
    wait_status(slow.job_id, "started")
    early = client.get(f"/api/jobs/{slow.job_id}/result")
    assert early.status_code == 409 and early.json()["code"] == "JOB_NOT_FINISHED"
    running = client.get(f"/api/jobs/{slow.job_id}").json()
    assert running["status"] == "started" and running["progress"]["total"] == 40
    deleted = client.delete(f"/api/jobs/{slow.job_id}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "cancelled"
    quick = submit(COUNT, {"n": 2})
    wait_status(quick.job_id, "finished")
    got = client.get(f"/api/jobs/{quick.job_id}/result").json()
    assert got == {"job_id": quick.job_id, "result": {"sum": 1, "ran": [0, 1], "attempt": 1}}


def test_result_folders_are_removed_once_the_job_expired(spool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = submit(COUNT, {"n": 1})
    wait_status(done.job_id, "finished")
    folder = spool / "count" / done.job_id
    assert folder.exists()
    assert cleanup_results(now=time.time() + 3600) == []  # record still alive
    (spool / "jobs" / f"{done.job_id}.json").unlink()  # what the TTL does
    assert cleanup_results(now=time.time()) == []  # younger than the grace period
    assert cleanup_results(now=time.time() + 3600) == [done.job_id]
    assert not folder.exists()


# ------------------------------------------------------------------- RQ and Redis ----------
def _burst(*queues: str) -> None:
    import redis
    from rq import SimpleWorker

    from mesdash.settings import get_settings

    connection = redis.Redis.from_url(str(get_settings().redis_url))
    SimpleWorker([rq_queue_name(q) for q in queues], connection=connection).work(burst=True)
    connection.close()


def test_rq_job_runs_on_a_worker_with_progress_and_failure(spool: Path, redis_namespace: str) -> None:
    submitted = submit(COUNT, {"n": 3})
    assert job_status(submitted.job_id)["status"] == "queued"
    assert submit(COUNT, {"n": 3}).created is False
    bad = submit(BAD, {"n": 1})
    _burst("reports", "msd")
    status = job_status(submitted.job_id)
    assert status["status"] == "finished" and status["progress"]["pct"] == 100.0
    assert job_result(submitted.job_id) == {"sum": 3, "ran": [0, 1, 2], "attempt": 1}
    assert job_status(bad.job_id)["error"]["code"] == "VALIDATION_ERROR"
    from rq.job import Job

    from mesdash.core.jobs.runner import rq_job_id
    from mesdash.core.jobs.store import RedisJobStore
    from mesdash.core.redis_client import get_redis

    # an ended job's parameters expire with its record, not an hour after it
    client = get_redis()
    assert client is not None
    for ended in (submitted.job_id, bad.job_id):
        record_ttl = client.ttl(RedisJobStore.record_key(ended))
        params_ttl = client.ttl(RedisJobStore.params_key(ended))
        assert 0 < params_ttl <= record_ttl <= submitted.record["ttl"]

    rq_job = Job.fetch(rq_job_id(bad.job_id, 1), connection=get_redis())
    assert map_rq_state(rq_job.get_status()) == "failed"  # RQ agrees: no automatic retry
    retried = submit(BAD, {"n": 1})
    assert retried.created and retried.record["attempt"] == 2


def test_rq_cancel_of_a_queued_job(spool: Path, redis_namespace: str) -> None:
    submitted = submit(COUNT, {"n": 2})
    assert cancel(submitted.job_id)["status"] == "cancelled"
    _burst("reports")
    assert job_status(submitted.job_id)["status"] == "cancelled"
    assert not (spool / "count" / submitted.job_id).exists()  # never ran


def start_rq_worker(spool: Path, **env: str) -> subprocess.Popen[bytes]:
    """``mesdash worker reports`` in a session of its own, with this process's environment
    (the Redis URL and namespace a fixture set included) and ``env`` on top."""
    return subprocess.Popen(
        [sys.executable, "-m", "mesdash.cli", "worker", "reports"],
        env={
            **os.environ,
            "PYTHONPATH": str(TESTS_DIR),
            "MESDASH_ENV": "testing",
            "MESDASH_SPOOL_DIR": str(spool),
            **env,
        },
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def worker_process(spool: Path, redis_namespace: str) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = start_rq_worker(spool)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.stress  # tests/test_trace_jobs.py kills a worker in the default suite
def test_worker_sigkill_marks_job_failed_within_watchdog_bound_then_retry_resumes(
    worker_process: Callable[[], subprocess.Popen[bytes]], spool: Path
) -> None:
    from mesdash.settings import get_settings

    params = {"n": 40, "sleep": 0.1}
    submitted = submit(COUNT, params)
    proc = worker_process()
    wait_for(lambda: job_status(submitted.job_id)["progress"]["completed"] >= 3, 30, "progress")
    os.killpg(proc.pid, signal.SIGKILL)  # the worker and its work horse
    proc.wait(10)
    killed_at = time.monotonic()
    bound = get_settings().job_heartbeat_stale_seconds + 2.0
    failed = wait_for(lambda: sweep() and job_status(submitted.job_id), bound, "watchdog sweep")
    assert time.monotonic() - killed_at <= bound
    assert failed["status"] == "failed" and failed["error"]["code"] == "WORKER_LOST"
    assert "stopped sending heartbeats" in failed["error"]["detail"]
    done_before = len(list((spool / "count" / submitted.job_id).glob("unit-*")))
    assert 3 <= done_before < 40
    retried = submit(COUNT, params)
    assert retried.created and retried.record["attempt"] == 2
    worker_process()
    wait_status(submitted.job_id, "finished", timeout=30)
    result = job_result(submitted.job_id)
    assert result["attempt"] == 2 and result["ran"] == list(range(done_before, 40))


def test_job_heartbeat_keeps_a_long_step_alive(spool: Path) -> None:
    """A job step longer than the stale bound is not declared dead while its process lives."""
    from mesdash.settings import get_settings

    step = get_settings().job_heartbeat_stale_seconds + 1.0
    submitted = submit(COUNT, {"n": 1, "sleep": step})
    stop = threading.Event()
    declared: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            declared.extend(sweep())
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        wait_status(submitted.job_id, "finished", timeout=step + 10)
    finally:
        stop.set()
        watcher.join()
    assert declared == []


def test_a_job_past_its_timeout_is_failed_and_stops(spool: Path) -> None:
    from mesdash.settings import get_settings

    submitted = submit(COUNT, {"n": 100, "sleep": 0.1}, timeout=1)
    wait_status(submitted.job_id, "started")
    bound = 1 + get_settings().job_heartbeat_stale_seconds + 2
    failed = wait_for(lambda: sweep() and job_status(submitted.job_id), bound, "timeout sweep")
    assert failed["status"] == "failed" and failed["error"]["code"] == "JOB_TIMEOUT"
    time.sleep(0.3)
    units = len(list((spool / "count" / submitted.job_id).glob("unit-*")))
    time.sleep(0.4)
    assert len(list((spool / "count" / submitted.job_id).glob("unit-*"))) == units < 100  # it stopped

