"""Equipment jobs: validation (1–50 machines, ≤ 730 days), jobs and transactions against raw
rows, views and the job × transaction export from the cache only, decomposition, the API.
DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mesdash.app import create_app
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.errors import NotFound, ValidationFailed
from mesdash.reports.jobs import service, views
from mesdash.reports.jobs.schemas import JobQuery, JobSelection
from mesdash.settings import reset_settings
from test_batch_support import use_backend

START, END = date(2026, 5, 1), date(2026, 6, 30)
SHIFT = timedelta(hours=7, minutes=30)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> Iterator[None]:
    gen = use_backend(monkeypatch, "local", redis_url, tmp_path / "spool")
    next(gen)
    yield
    next(gen, None)


def busiest_machines(wh: Warehouse, n: int = 3) -> list[str]:
    rows = wh.read_sql_df("SELECT RESOURCEID FROM dwh.DW_MES_JOB").to_dicts()
    return [rid for rid, _ in Counter(r["RESOURCEID"] for r in rows).most_common(n)]


def raw_jobs(wh: Warehouse, machines: list[str]) -> tuple[list[dict[str, Any]], Counter[str]]:
    lo = datetime.combine(START, datetime.min.time()) + SHIFT
    hi = datetime.combine(END + timedelta(days=1), datetime.min.time()) + SHIFT
    jobs = [j for j in wh.read_sql_df("SELECT * FROM dwh.DW_MES_JOB").to_dicts()
            if j["RESOURCEID"] in machines and lo <= j["CREATEDATE"] < hi]
    txns = Counter(t["JOBID"] for t in wh.read_sql_df("SELECT JOBID FROM dwh.DW_MES_JOBTXNHISTORY").to_dicts())
    return jobs, txns


def test_requests_are_validated() -> None:
    with pytest.raises(ValidationError, match="choose 1 to 50"):
        JobQuery(start_date=START, end_date=END, machines=[])
    with pytest.raises(ValidationError, match="choose 1 to 50"):
        JobQuery(start_date=START, end_date=END, machines=[f"m{i}" for i in range(51)])
    with pytest.raises(ValidationError, match="limit is 730"):
        JobQuery(start_date="2024-07-01", end_date="2026-07-01", machines=["a"])
    assert JobQuery(start_date=START, end_date=END, machines="a,b, a").machines == ("a", "b")
    with pytest.raises(ValidationError):
        JobSelection(unknown="x")


def test_jobs_views_match_raw_rows(tiny_warehouse: Warehouse, local: None) -> None:
    wh = tiny_warehouse
    machines = busiest_machines(wh)
    info = service.build(JobQuery(start_date=START, end_date=END, machines=machines), wh)
    jobs, txns = raw_jobs(wh, machines)
    assert info.chunks == 2 and info.rows == sum(max(1, txns[j["JOBID"]]) for j in jobs)
    before = wh.stats.count
    page = views.jobs_page(info.query_id, JobSelection(), page_size=1000, sort="CREATEDATE")
    assert page["total"] == len(jobs) > 0
    assert [r["JOBID"] for r in page["rows"]] == [j["JOBID"] for j in sorted(jobs, key=lambda j: (j["CREATEDATE"], j["JOBID"]))]
    assert {r["JOBID"]: r["TXN_COUNT"] for r in page["rows"]} == {j["JOBID"]: txns[j["JOBID"]] for j in jobs}
    status = views.breakdown(info.query_id, JobSelection(), "status")["items"]
    assert {i["item"]: i["jobs"] for i in status} == dict(Counter(j["JOBSTATUS"] for j in jobs))

    name = jobs[0]["RESOURCENAME"]
    sel = JobSelection(machines=(name,))
    mine = [j for j in jobs if j["RESOURCENAME"] == name]
    narrowed = views.jobs_page(info.query_id, sel)
    assert narrowed["total"] == len(mine)
    # the machine breakdown ignores its own selection: every machine stays listed
    assert len(views.breakdown(info.query_id, sel, "machine")["items"]) == len({j["RESOURCENAME"] for j in jobs})

    job = max(jobs, key=lambda j: txns[j["JOBID"]])
    detail = views.transactions(info.query_id, job["JOBID"])
    assert len(detail["transactions"]) == txns[job["JOBID"]]
    assert [t["TXNDATE"] for t in detail["transactions"]] == sorted(t["TXNDATE"] for t in detail["transactions"])
    with pytest.raises(NotFound):
        views.transactions(info.query_id, "nope")
    with pytest.raises(ValidationFailed):
        views.jobs_page(info.query_id, sel, sort="EMP_NAME; DROP")

    rows = list(csv.DictReader(io.StringIO(b"".join(views.export_csv(info.query_id, sel)).decode("utf-8-sig"))))
    assert len(rows) == narrowed["export_rows"] == sum(max(1, txns[j["JOBID"]]) for j in mine)
    assert wh.stats.count == before


def test_decomposed_plan_equals_single_query(
    tiny_warehouse: Warehouse, local: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = JobQuery(start_date=START, end_date=END, machines=busiest_machines(tiny_warehouse))
    split = service.build(q, tiny_warehouse)
    monkeypatch.setenv("BATCH_QUERY_TIME_THRESHOLD_DAYS", "100")
    reset_settings()
    single = service.build(q, tiny_warehouse)
    assert (split.chunks, single.chunks) == (2, 1)
    a = views.jobs_page(split.query_id, JobSelection(), page_size=1000)["rows"]
    b = views.jobs_page(single.query_id, JobSelection(), page_size=1000)["rows"]
    assert a == b and a


def test_api_round_trip(tiny_warehouse: Warehouse, local: None) -> None:
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    machines = busiest_machines(tiny_warehouse, 2)
    with TestClient(app) as client:
        found = client.get("/api/job-query/machines", params={"q": "gwba"}).json()
        assert found["machines"] and all("gwba" in m["machine"].lower() or "gwba" in (m["family"] or "").lower()
                                         for m in found["machines"])
        resp = client.post("/api/job-query/query", json={"start_date": "2026-05-01", "end_date": "2026-06-30",
                                                         "machines": machines})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        qid = body["query_id"]
        before = tiny_warehouse.stats.count
        jobs = client.get("/api/job-query/jobs", params={"query_id": qid, "page_size": 5}).json()
        assert jobs["total"] == body["jobs"]["total"] > 0
        job_id = jobs["rows"][0]["JOBID"]
        txns = client.get(f"/api/job-query/jobs/{job_id}/transactions", params={"query_id": qid})
        assert txns.status_code == 200 and txns.json()["job"]["JOBID"] == job_id
        export = client.get("/api/job-query/export", params={"query_id": qid})
        assert len(export.content.decode("utf-8-sig").splitlines()) - 1 == jobs["export_rows"]
        assert client.get("/api/job-query/breakdown", params={"query_id": qid, "dimension": "model"}).status_code == 200
        assert tiny_warehouse.stats.count == before
        bad = client.post("/api/job-query/query", json={"start_date": "2026-05-01", "end_date": "2026-06-30",
                                                        "machines": []})
        assert bad.status_code == 400 and "machines" in bad.json()["detail"]
        assert client.get("/api/job-query/breakdown", params={"query_id": qid, "dimension": "x"}).status_code == 400
        assert client.get("/api/job-query/jobs", params={"query_id": "0123456789abcdef"}).status_code == 410
        assert client.get("/job-query").status_code == 200
