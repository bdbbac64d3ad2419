"""Chaos during load: 50 users on the demo warehouse in a private PostgreSQL cluster while
Redis is stopped and started, an RQ worker is SIGKILLed in the middle of a trace job (and
restarted, as systemd's ``Restart=always`` would), PostgreSQL is stopped and started, and
an admin restart is requested through the API and executed by the running
``mesdash watchdog`` (SIGHUP to gunicorn).

Pass: no request past its timeout; every 5xx is a designed 503/504 code with Retry-After;
every job ends finished or failed with a reason — the killed one ``WORKER_LOST``, and
re-submitting it resumes under the same id to ``finished``; no job stream loses or repeats a
batch; afterwards the breaker is CLOSED in every web worker and data requests answer 200;
the reload replaced both web workers under the same master.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from loaddriver import TERMINAL, Driver, Report, load_catalog
from stack import AS_ADMIN, END, Stack, running_stack, save_summary

from faults import PrivatePostgres, wait_until

pytestmark = [pytest.mark.stress, pytest.mark.timeout(1800)]
SECONDS = float(os.environ.get("STRESS_CHAOS_SECONDS", "150"))
CLOSE = {"Connection": "close"}


@dataclass
class Timeline:
    started: float
    phases: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, name: str, begin: float, end: float | None = None) -> None:
        now = time.monotonic() - self.started
        self.phases.append(
            {"fault": name, "from_s": round(begin, 1), "to_s": round(end if end is not None else now, 1)}
        )

    def now(self) -> float:
        return time.monotonic() - self.started

    def wait_for(self, second: float) -> None:
        time.sleep(max(0.0, second - self.now()))


def _errors_by_phase(report: Report, timeline: Timeline) -> list[dict[str, Any]]:
    """Non-200 answers by the fault in force when the request was sent: a request belongs
    to the last fault begun before it, until 15 s after that fault ended."""
    buckets: dict[str, list[Any]] = {"before the faults": []}
    buckets.update({phase["fault"]: [] for phase in timeline.phases})
    buckets["after the faults"] = []
    for sample in report.samples:
        name = "before the faults"
        for phase in timeline.phases:
            if sample.at >= phase["from_s"]:
                name = phase["fault"] if sample.at <= phase["to_s"] + 15 else "after the faults"
        buckets[name].append(sample)
    spans = {phase["fault"]: phase for phase in timeline.phases}
    rows = []
    for name, window in buckets.items():
        answers = Counter(
            f"{s.status or s.error} {s.code or ''}".strip() for s in window if s.status not in (200, 202)
        )
        rows.append({**spans.get(name, {"fault": name}), "requests": len(window), "answers": dict(answers)})
    return rows


def _big_trace(stack: Stack, ids: list[str]) -> dict[str, Any]:
    body = {"container_ids": ids, "domains": ["history", "materials", "rejects", "holds"], "lineage": "both"}
    response = httpx.post(stack.base + "/api/trace/events", json=body, headers=CLOSE, timeout=60)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _job_status(stack: Stack, accepted: dict[str, Any]) -> dict[str, Any]:
    return dict(httpx.get(stack.base + accepted["status_url"], headers=CLOSE, timeout=30).json())


def _worker_running(stack: Stack, job_id: str) -> int | None:
    """Index of the stack's RQ worker whose current job is ``job_id`` (any attempt)."""
    from rq import Worker

    connection = redis_lib.Redis.from_url(stack.redis.url)
    try:
        pids = [proc.pid for proc in stack.rq_workers]
        for worker in Worker.all(connection=connection):
            current = worker.get_current_job_id()
            if current and f"_{job_id}_a" in current and worker.pid in pids:
                return pids.index(worker.pid)
        return None
    finally:
        connection.close()


def _kill_worker_mid_job(stack: Stack, ids: list[str]) -> tuple[dict[str, Any], int]:
    """Submit a large trace and SIGKILL the worker running it (its work horse too);
    returns the 202 body and the killed worker's index."""
    accepted = _big_trace(stack, ids)
    found: list[int] = []

    def running() -> bool:
        index = _worker_running(stack, accepted["job_id"])
        if index is not None:
            found.append(index)
        return index is not None

    wait_until(running, 60, interval=0.1, what="an RQ worker running the large trace")
    stack.kill_worker(found[-1])
    return accepted, found[-1]


def _breaker_recovered(stack: Stack, lot: str) -> bool:
    states = []
    for _ in range(6):  # Connection: close — the answers come from both web workers
        health = httpx.get(stack.base + "/health", headers=CLOSE, timeout=30)
        if health.status_code != 200:
            return False
        states.append(health.json()["circuit_breaker"]["state"])
    data = httpx.post(
        stack.base + "/api/trace/lineage", json={"container_ids": [lot]}, headers=CLOSE, timeout=30
    )
    return data.status_code == 200 and set(states) == {"CLOSED"}


def _restart_via_admin(stack: Stack, before: dict[str, Any]) -> None:
    accepted = httpx.post(
        stack.base + "/admin/api/worker/restart",
        json={"reason": "chaos test"},
        headers={**AS_ADMIN, **CLOSE},
        timeout=30,
    )
    assert accepted.status_code == 202, accepted.text
    old = {w["pid"] for w in before["workers"]}

    def reloaded() -> bool:
        try:
            pids = {w["pid"] for w in stack.worker_status()["workers"]}
        except httpx.HTTPError:
            return False
        return len(pids) == 2 and not pids & old

    wait_until(reloaded, 60, interval=0.5, what="gunicorn reloaded by the watchdog")


def _run_faults(stack: Stack, pg: PrivatePostgres, tl: Timeline, big_ids: list[str]) -> dict[str, Any]:
    """The fault schedule; a step that fails is recorded and the next one still runs."""
    found: dict[str, Any] = {"step_failures": []}

    def step(name: str, at: float, action: Any) -> None:
        tl.wait_for(at)
        begin = tl.now()
        try:
            action()
        except Exception as exc:  # keep going: the summary should show every fault
            found["step_failures"].append(f"{name}: {type(exc).__name__}: {exc}")
        tl.mark(name, begin)

    def redis_outage() -> None:
        stack.redis.stop()
        tl.wait_for(25)
        stack.redis.start()

    def kill_worker() -> None:
        found["killed_job"], found["killed_worker"] = _kill_worker_mid_job(stack, big_ids)

    def pg_outage() -> None:
        pg.stop()
        tl.wait_for(80)
        pg.start()

    before = stack.worker_status()
    found["before"] = before
    step("Redis stopped (10 s) and started (25 s)", 10, redis_outage)
    step("RQ worker SIGKILLed mid-job (systemd restarts it 5 s later)", 40, kill_worker)
    step("PostgreSQL stopped (60 s) and started (80 s)", 60, pg_outage)
    step(
        "admin restart → mesdash watchdog → SIGHUP → gunicorn reload",
        95,
        lambda: _restart_via_admin(stack, before),
    )
    return found


def test_chaos_during_load(demo_pg: tuple[PrivatePostgres, str], tmp_path: Path) -> None:
    pg, url = demo_pg
    catalog = load_catalog(url, END)
    big_ids = [cid for cid, _ in catalog.lots[:300]]
    with running_stack(url, tmp_path) as stack:
        driver = Driver(stack.base, catalog, users=50, seconds=SECONDS, timeout=60, job_wait=120)
        result: dict[str, Report] = {}
        loader = threading.Thread(target=lambda: result.setdefault("report", asyncio.run(driver.run())))
        loader.start()
        try:
            time.sleep(0.5)
            tl = Timeline(driver.report.started)
            found = _run_faults(stack, pg, tl, big_ids)
        finally:
            loader.join(SECONDS + 300)
            driver.stopped.set()
            loader.join(60)
        report = result["report"]

        killed: dict[str, Any] = {}
        resumed: dict[str, Any] = {}
        try:
            if "killed_job" in found:
                # the killed job ends failed with a reason; a resubmission resumes it to the end
                job = found["killed_job"]
                wait_until(lambda: _job_status(stack, job)["status"] in TERMINAL, 60, what="killed job")
                killed = _job_status(stack, job)
                again = _big_trace(stack, big_ids)
                wait_until(
                    lambda: _job_status(stack, again)["status"] in TERMINAL, 180, what="resubmitted job"
                )
                resumed = _job_status(stack, again)
        except AssertionError as exc:
            found["step_failures"].append(f"after the load: {exc}")

        recovered_at = time.monotonic()
        recovery_s: float | None = None
        try:
            wait_until(
                lambda: _breaker_recovered(stack, big_ids[0]), 90, interval=1, what="breaker CLOSED, data 200"
            )
            recovery_s = round(time.monotonic() - recovered_at, 1)
        except AssertionError as exc:
            found["step_failures"].append(str(exc))
        after = stack.worker_status()
        restarts = list(stack.restarts)

    before = found["before"]
    summary = {
        **report.summary(),
        "dialect": "postgresql",
        "faults": _errors_by_phase(report, tl),
        "step_failures": found["step_failures"],
        "unit_restarts": restarts,
        "killed_job": {k: killed.get(k) for k in ("job_id", "status", "error", "attempt")},
        "resubmitted": {k: resumed.get(k) for k in ("job_id", "status", "attempt")},
        "breaker_recovered_after_load_s": recovery_s,
        "master_pid_same": before["master_pid"] == after["master_pid"],
        "routes": report.routes(),
        "violations": report.violations(),
    }
    save_summary("chaos-postgresql", summary, report.markdown())

    assert not found["step_failures"], found["step_failures"]
    assert killed.get("status") == "failed" and killed["error"]["code"] == "WORKER_LOST", killed
    assert resumed["job_id"] == killed["job_id"] and resumed["status"] == "finished", resumed
    assert resumed["attempt"] == killed["attempt"] + 1, resumed
    assert before["master_pid"] == after["master_pid"]
    assert not report.violations(), report.violations()[:40]
