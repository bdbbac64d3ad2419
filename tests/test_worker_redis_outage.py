"""``mesdash worker`` rides out a Redis outage: it stays up while a private Redis is stopped
and started, and runs the next job once Redis answers again (no service manager needed)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults import PrivateRedis, private_redis, wait_until
from mesdash.core.jobs import job_status, submit
from test_jobs_core import COUNT, start_rq_worker


@pytest.fixture
def outage_redis() -> Iterator[PrivateRedis]:
    with private_redis(appendonly=True) as server:  # keeps its jobs across the restart
        yield server


@pytest.fixture
def redis_url(outage_redis: PrivateRedis) -> str:
    """This module's Redis is its own, so that stopping it touches no other test."""
    return outage_redis.url


def test_worker_survives_a_redis_restart_and_runs_the_next_job(
    outage_redis: PrivateRedis, redis_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    monkeypatch.setenv("MESDASH_SPOOL_DIR", str(spool))
    worker = start_rq_worker(
        spool,
        MESDASH_REDIS_URL=outage_redis.url,
        MESDASH_CACHE_NAMESPACE=redis_namespace,
        JOB_HEARTBEAT_SECONDS="1",
        JOB_HEARTBEAT_STALE_SECONDS="5",
        JOB_WATCHDOG_INTERVAL_SECONDS="1",
    )
    try:
        first = submit(COUNT, {"n": 2})
        wait_until(lambda: job_status(first.job_id)["status"] == "finished", 30, what="first job finished")
        # Redis goes away while a job runs: RQ's work-horse monitor raised, and the worker
        # process exited with code 1 (seen in the chaos suite), leaving it to systemd
        running = submit(COUNT, {"n": 200, "sleep": 0.1})
        wait_until(lambda: job_status(running.job_id)["progress"]["completed"] >= 2, 30, what="job running")
        outage_redis.stop()
        time.sleep(6)
        assert worker.poll() is None, f"the worker exited with {worker.returncode} when Redis went away"
        outage_redis.start()

        second = submit(COUNT, {"n": 3})
        wait_until(lambda: job_status(second.job_id)["status"] == "finished", 40, what="job after the restart")
        assert worker.poll() is None
        # the job Redis was lost under ends, failed with a reason or finished; none stays running
        wait_until(
            lambda: job_status(running.job_id)["status"] in ("finished", "failed"), 60, what="interrupted job ended"
        )
        ended = job_status(running.job_id)
        assert ended["status"] == "finished" or ended["error"]["code"], ended
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
