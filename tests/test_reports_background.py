"""Long report ranges answer 202: a job (in process without Redis, an RQ worker with it)
builds the dataset with chunk progress, and its result's query_id serves every view."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker

from mesdash.app import create_app
from mesdash.core.batch.dataset import drop_dataset
from mesdash.core.db.warehouse import reset_warehouse
from mesdash.core.jobs import rq_queue_name
from mesdash.settings import get_settings, reset_settings
from test_batch_support import use_backend

RANGE = {"start_date": "2026-05-01", "end_date": "2026-06-30"}  # 61 days, 2 chunks


@pytest.fixture(params=["local", "redis"])
def client(request: pytest.FixtureRequest, tiny_duckdb_url: str, monkeypatch: pytest.MonkeyPatch,
           redis_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    gen = use_backend(monkeypatch, request.param, redis_url, tmp_path / "spool")
    next(gen)
    monkeypatch.setenv("MESDASH_DATABASE_URL", tiny_duckdb_url)
    monkeypatch.setenv("REPORT_JOB_THRESHOLD_DAYS", "30")
    reset_settings()
    reset_warehouse()
    with TestClient(create_app()) as test_client:
        yield test_client, str(request.param)
    reset_warehouse()
    next(gen, None)


def _finish(client: TestClient, backend: str, accepted: dict[str, Any]) -> dict[str, Any]:
    if backend == "redis":
        conn = redis.Redis.from_url(get_settings().redis_url or "")
        SimpleWorker([rq_queue_name("reports")], connection=conn).work(burst=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(accepted["status_url"]).json()
        if status["status"] in ("finished", "failed", "cancelled"):
            return dict(status)
        time.sleep(0.1)
    raise AssertionError("job did not finish")


@pytest.mark.parametrize(("report", "body"), [
    ("hold-history", {}),
    ("resource-history", {"granularity": "week"}),
])
def test_long_range_runs_as_a_job(client: tuple[TestClient, str], report: str, body: dict[str, Any]) -> None:
    test_client, backend = client
    short = test_client.post(f"/api/{report}/query", json={"start_date": "2026-06-01", "end_date": "2026-06-20"})
    assert short.status_code == 200
    resp = test_client.post(f"/api/{report}/query", json={**RANGE, **body})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["kind"] == report and resp.headers["location"] == accepted["status_url"]
    status = _finish(test_client, backend, accepted)
    assert status["status"] == "finished", status
    assert status["progress"]["total"] == 2 and status["progress"]["completed"] == 2
    result = test_client.get(accepted["result_url"]).json()["result"]
    assert result["chunks"] == 2 and result["quality"]["status"] == "complete"
    view = "trend" if report == "hold-history" else "summary"
    assert test_client.get(f"/api/{report}/{view}", params={"query_id": result["query_id"]}).status_code == 200
    # the same request while the dataset is kept: 200 with it at once, no job to poll
    again = test_client.post(f"/api/{report}/query", json={**RANGE, **body})
    assert again.status_code == 200, again.text
    assert again.json()["query_id"] == result["query_id"] and again.json()["rows"] == result["rows"]
    assert test_client.get(accepted["status_url"]).json()["attempt"] == 1
    # the dataset expired (or lived in another process): the same request runs the job again
    drop_dataset({"hold-history": "hold", "resource-history": "resource"}[report], result["query_id"])
    rerun = test_client.post(f"/api/{report}/query", json={**RANGE, **body}).json()
    status = _finish(test_client, backend, rerun)
    assert rerun["job_id"] == accepted["job_id"] and status["attempt"] == 2 and status["status"] == "finished"
    assert test_client.get(f"/api/{report}/{view}", params={"query_id": result["query_id"]}).status_code == 200


def test_job_query_long_range(client: tuple[TestClient, str]) -> None:
    test_client, backend = client
    machines = [m["resource_id"] for m in test_client.get("/api/job-query/machines").json()["machines"][:5]]
    resp = test_client.post("/api/job-query/query", json={**RANGE, "machines": machines})
    assert resp.status_code == 202
    status = _finish(test_client, backend, resp.json())
    assert status["status"] == "finished", status
    qid = status["result"]["query_id"]
    assert test_client.get("/api/job-query/jobs", params={"query_id": qid}).json()["total"] > 0
