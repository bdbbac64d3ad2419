"""Load: 50 users for ``STRESS_LOAD_SECONDS`` (60) against gunicorn with 2 workers, a
private Redis and two RQ workers, on the demo warehouse in DuckDB and in PostgreSQL.

Pass: no 5xx except the designed 503/504 codes, every 429/503 carries Retry-After, no
request past its timeout, every job terminal, every job stream complete without a lost or
duplicated batch. Throughput, p50/p95/p99 per route and the error codes are written to
``var/stress/load-{dialect}.json|md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from loaddriver import load_catalog, run_load
from stack import END, running_stack, save_summary

pytestmark = [pytest.mark.stress, pytest.mark.timeout(1800)]
SECONDS = float(os.environ.get("STRESS_LOAD_SECONDS", "60"))
USERS = int(os.environ.get("STRESS_USERS", "50"))


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql"])
def test_fifty_users_mixed_load(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if dialect == "duckdb":
        url = request.getfixturevalue("demo_duckdb_url")
    else:
        _pg, url = request.getfixturevalue("demo_pg")
    catalog = load_catalog(url, END)
    with running_stack(url, tmp_path) as stack:
        report = run_load(stack.base, catalog, users=USERS, seconds=SECONDS, max_requests=200_000)
        logs = stack.log("web.log")
    summary = {
        **report.summary(),
        "dialect": dialect,
        "routes": report.routes(),
        "violations": report.violations(),
    }
    save_summary(f"load-{dialect}", summary, report.markdown())
    assert report.samples, "no request was sent"
    assert {j.status for j in report.jobs} <= {"finished"}, report.job_summary()
    assert not report.violations(), (report.violations()[:30], logs[-3000:])
