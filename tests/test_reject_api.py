"""Reject-history routes over the real app, real Redis, both dialects: a 365-day query whose
totals equal one direct SQL aggregate, views with zero warehouse queries, a forced spill
with identical views and export, container mode, strict input, 410 on an expired dataset."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker

from mesdash.app import create_app
from mesdash.core.batch import QuerySpool
from mesdash.core.batch.dataset import drop_dataset
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.db import warehouse as warehouse_module
from mesdash.core.db.warehouse import QueryStats
from mesdash.core.jobs import rq_queue_name
from mesdash.reports.reject import service
from mesdash.reports.reject.service import PREFIX
from mesdash.settings import get_settings, reset_settings
from test_batch_support import use_backend

YEAR = {"start_date": "2025-07-01", "end_date": "2026-06-30"}  # 365 factory days
QTY = ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY")
# The default policy, phrased independently of the report's SQL (TRANSLATE, NOT IN,
# IS DISTINCT FROM): valid reason names, no enabled exclusion, no material scrap, no PB diodes.
DIRECT_SQL = """
WITH kept AS (
  SELECT r.*, c.MFGORDERNAME
  FROM dwh.DW_MES_LOTREJECTHISTORY r LEFT JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = r.CONTAINERID
  WHERE r.TXNDATE >= :lo AND r.TXNDATE < :hi AND {scope}
    AND SUBSTR(r.LOSSREASONNAME, 4, 1) = '_'
    AND TRANSLATE(SUBSTR(r.LOSSREASONNAME, 1, 3), '0123456789', '') = ''
    AND SUBSTR(r.LOSSREASONNAME, 1, 3) NOT IN (
      SELECT REASON_NAME FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE WHERE ENABLE_FLAG = 'Y')
    AND r.LOSSREASONNAME NOT IN (
      SELECT REASON_NAME FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE WHERE ENABLE_FLAG = 'Y')
    AND c.OBJECTTYPE IS DISTINCT FROM 'MATERIAL'
    AND NOT COALESCE(c.PRODUCTLINENAME LIKE 'PB!_%' ESCAPE '!', FALSE)
)
SELECT COUNT(*) AS n, SUM({charged}) AS charged, SUM(COALESCE(DEFECTQTY, 0)) AS defect,
       COUNT(DISTINCT CONTAINERID) AS lots,
       COUNT(DISTINCT COALESCE(PJ_WORKORDER, MFGORDERNAME)) AS work_orders,
       (SELECT SUM(m) FROM (SELECT MAX(COALESCE(MOVEINQTY, 0)) AS m FROM kept GROUP BY HISTORYMAINLINEID) e)
         AS movein
FROM kept
""".replace("{charged}", " + ".join(f"COALESCE({c}, 0)" for c in QTY))


@pytest.fixture
def client(
    tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    gen = use_backend(monkeypatch, "redis", redis_url, tmp_path / "spool")
    next(gen)
    # jobs run on a worker that asks get_warehouse(): make it the tiny warehouse too
    monkeypatch.setattr(warehouse_module, "_instance", tiny_warehouse)
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as test_client:
        yield test_client
    next(gen, None)


@pytest.fixture
def local_client(
    tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The embedded set-up: no Redis, jobs on the in-process pool, records as sidecar files."""
    gen = use_backend(monkeypatch, "local", redis_url, tmp_path / "spool")
    next(gen)
    monkeypatch.setattr(warehouse_module, "_instance", tiny_warehouse)
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as test_client:
        yield test_client
    next(gen, None)


@pytest.fixture
def warehouse_queries() -> Iterator[Callable[[], int]]:
    """Round trips to any warehouse in this process (QueryStats observers)."""
    seen: list[str] = []

    def observe(path: str, _seconds: float, _ok: bool) -> None:
        seen.append(path)

    QueryStats.observers.append(observe)
    yield lambda: len(seen)
    QueryStats.observers.remove(observe)


def direct(wh: Warehouse, start: str, end: str, scope: str = "1 = 1", **binds: Any) -> dict[str, float]:
    lo = datetime.combine(date.fromisoformat(start), datetime.min.time()) + timedelta(hours=7, minutes=30)
    hi = datetime.combine(date.fromisoformat(end), datetime.min.time()) + timedelta(
        days=1, hours=7, minutes=30
    )
    row = wh.read_sql_df(DIRECT_SQL.replace("{scope}", scope), {"lo": lo, "hi": hi, **binds}).to_dicts()[0]
    return {k.lower(): float(v or 0) for k, v in row.items()}


def burst() -> None:
    """Run the queued ``reports`` jobs on an RQ worker in this process."""
    connection = redis.Redis.from_url(str(get_settings().redis_url))
    SimpleWorker([rq_queue_name("reports")], connection=connection).work(burst=True)
    connection.close()


def run(client: TestClient, payload: dict[str, Any], expect_job: bool | None = None) -> dict[str, Any]:
    """The query's 200 body — directly, or through its job (202 → worker → result)."""
    resp = client.post("/api/reject-history/query", json=payload)
    assert resp.status_code in (200, 202), resp.text
    if expect_job is not None:
        assert (resp.status_code == 202) is expect_job
    if resp.status_code == 200:
        return dict(resp.json())
    accepted = resp.json()
    assert accepted["kind"] == "reject" and resp.headers["location"] == accepted["status_url"]
    assert client.get(accepted["status_url"]).json()["status"] == "queued"
    burst()
    status = client.get(accepted["status_url"]).json()
    assert status["status"] == "finished", status
    assert status["progress"]["pct"] == 100.0 and status["progress"]["total"] >= 1
    result = client.get(accepted["result_url"]).json()["result"]
    return dict(result)


def views(client: TestClient, qid: str, extra: str = "") -> dict[str, Any]:
    base = f"/api/reject-history/{{}}?query_id={qid}{extra}"
    out = {
        "summary": client.get(base.format("summary")).json()["summary"],
        "trend": client.get(base.format("trend") + "&granularity=week").json()["points"],
        "reasons": client.get(base.format("reason-pareto")).json()["items"],
        "top80": client.get(base.format("reason-pareto") + "&scope=top80").json()["items"],
        "packages": client.get(base.format("pareto") + "&dimension=package").json()["items"],
        "machines": client.get(base.format("pareto") + "&dimension=machine&measure=defect").json()["items"],
        "list": client.get(base.format("list") + "&page=2&page_size=25&sort=-CHARGED_OFF_QTY,TXNDATE").json(),
        "export": client.get(base.format("export")).content,
    }
    out["list"].pop("as_of")
    return out


def test_year_query_totals_and_views_from_cache(
    client: TestClient, tiny_warehouse: Warehouse, warehouse_queries: Callable[[], int]
) -> None:
    body = run(client, YEAR, expect_job=True)  # 365 days > BATCH_QUERY_TIME_THRESHOLD_DAYS
    assert body["quality"]["status"] == "complete" and body["chunks"] == 12 and body["as_of"]
    expected = direct(tiny_warehouse, YEAR["start_date"], YEAR["end_date"])
    assert expected["n"] > 100 and body["rows"] == expected["n"]

    before = warehouse_queries()
    got = views(client, body["query_id"])
    s = got["summary"]
    assert (s["rows"], s["affected_lots"], s["affected_work_orders"]) == (
        expected["n"],
        expected["lots"],
        expected["work_orders"],
    )
    assert s["charged_off_qty"] == pytest.approx(expected["charged"])
    assert s["not_charged_off_qty"] == pytest.approx(expected["defect"])
    assert s["movein_qty"] == pytest.approx(expected["movein"])
    assert sum(p["charged_off_qty"] for p in got["trend"]) == pytest.approx(expected["charged"])
    assert sum(i["qty"] for i in got["reasons"]) == pytest.approx(expected["charged"])
    assert got["top80"] == [i for i in got["reasons"] if i["top80"]] and 0 < len(got["top80"]) < len(
        got["reasons"]
    )
    charged = [float(r["CHARGED_OFF_QTY"]) for r in got["list"]["rows"]]
    assert got["list"]["total"] == expected["n"] and charged == sorted(charged, reverse=True)
    export = got["export"]
    assert export.startswith(b"\xef\xbb\xbf")
    records = list(csv.DictReader(io.StringIO(export[3:].decode("utf-8"))))
    assert len(records) == expected["n"]
    assert sum(float(r["CHARGED_OFF_QTY"]) for r in records) == pytest.approx(expected["charged"])

    # cross-filter: the top reason narrows the others; its own pareto keeps its context
    top = got["reasons"][0]["item"]
    picked = views(client, body["query_id"], f"&reason={top}")
    assert picked["reasons"] == got["reasons"]
    assert picked["summary"]["charged_off_qty"] == pytest.approx(got["reasons"][0]["qty"])
    assert sum(i["qty"] for i in picked["packages"]) == pytest.approx(got["reasons"][0]["qty"])

    # the same closed-range query again is answered from the kept dataset, at once
    assert run(client, YEAR, expect_job=False)["query_id"] == body["query_id"]
    assert warehouse_queries() == before


def test_forced_spill_gives_identical_views_and_export(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, warehouse_queries: Callable[[], int]
) -> None:
    payload = {"start_date": "2026-03-01", "end_date": "2026-06-30", "pj_types": []}
    small = run(client, payload)
    assert not small["spilled"]
    in_cache = views(client, small["query_id"])
    drop_dataset(PREFIX, small["query_id"])

    monkeypatch.setenv("REJECT_ENGINE_MAX_TOTAL_ROWS", "10")
    reset_settings()
    before = warehouse_queries()
    spilled = run(client, payload)
    assert warehouse_queries() == before  # the chunks were still cached: merged, not re-read
    assert spilled["spilled"] and spilled["query_id"] == small["query_id"]
    assert QuerySpool().path_for(PREFIX, spilled["query_id"]).exists()
    assert views(client, spilled["query_id"]) == in_cache
    assert warehouse_queries() == before


def test_container_mode_with_wildcards(
    client: TestClient, tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = tiny_warehouse.read_sql_df(
        "SELECT c.MFGORDERNAME, COUNT(*) FROM dwh.DW_MES_LOTREJECTHISTORY r "
        "JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = r.CONTAINERID WHERE c.OBJECTTYPE = 'LOT' "
        "AND c.PRODUCTLINENAME NOT LIKE 'PB%' GROUP BY c.MFGORDERNAME ORDER BY COUNT(*) DESC, c.MFGORDERNAME FETCH FIRST 1 ROWS ONLY"
    ).rows[0][0]
    lots = tiny_warehouse.read_sql_df(
        "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE MFGORDERNAME = :wo AND OBJECTTYPE = 'LOT'",
        {"wo": order},
    ).rows
    ids = [row[0] for row in lots]
    body = run(client, {"container_type": "work_order", "containers": [order[:-1] + "*", "NOPE-WO"]})
    assert body["not_found"] == ["NOPE-WO"]
    binds = {f"c{i}": cid for i, cid in enumerate(ids)}
    scope = f"r.CONTAINERID IN ({', '.join(':' + k for k in binds)})"
    # container mode has no date bounds: the whole history of the lots
    expected = direct(tiny_warehouse, "2000-01-01", "2100-01-01", scope, **binds)
    summary = client.get(f"/api/reject-history/summary?query_id={body['query_id']}").json()["summary"]
    assert summary["rows"] >= expected["n"] > 0  # a wildcard can match more work orders
    exact = run(client, {"container_type": "work_order", "containers": [order]}, expect_job=False)
    summary = client.get(f"/api/reject-history/summary?query_id={exact['query_id']}").json()["summary"]
    assert summary["rows"] == expected["n"]
    assert summary["charged_off_qty"] == pytest.approx(expected["charged"])

    # more lots than one batch: a job, one chunk per batch, the same numbers
    monkeypatch.setattr(service, "ID_BATCH_SIZE", 2)
    batched = run(client, {"container_type": "work_order", "containers": [order], "reasons": []}, True)
    assert batched["chunks"] == (len(ids) + 1) // 2 > 1
    again = client.get(f"/api/reject-history/summary?query_id={batched['query_id']}").json()["summary"]
    assert again == summary


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**YEAR, "include_excluded_scrap": "t"}, "include_excluded_scrap"),
        ({**YEAR, "exclude_material_scrap": "1.0"}, "exclude_material_scrap"),
        ({**YEAR, "exclude_pb_diode": "maybe"}, "exclude_pb_diode"),
        ({"start_date": "2025-06-30", "end_date": "2026-06-30"}, "365"),
        ({**YEAR, "container_type": "lot_id", "containers": ["A"]}, "either"),
        ({"container_type": "serial_number", "containers": ["A"]}, "container_type"),
        ({**YEAR, "colour": "red"}, "colour"),
        ({**YEAR, "reasons": False}, "reasons"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    client: TestClient, payload: dict[str, Any], field: str
) -> None:
    resp = client.post("/api/reject-history/query", json=payload)
    assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "VALIDATION_ERROR" and field in resp.json()["detail"]


def test_flags_parse_strictly_with_defaults(client: TestClient, tiny_warehouse: Warehouse) -> None:
    default = run(client, {"start_date": "2026-06-01", "end_date": "2026-06-30"})
    spelled = run(
        client,
        {
            "start_date": "2026-06-01",
            "end_date": "2026-06-30",
            "include_excluded_scrap": "OFF",
            "exclude_material_scrap": "Yes",
            "exclude_pb_diode": 1,
        },
    )
    assert spelled["query_id"] == default["query_id"]
    lifted = run(
        client, {"start_date": "2026-06-01", "end_date": "2026-06-30", "include_excluded_scrap": "y"}
    )
    assert lifted["query_id"] != default["query_id"] and lifted["rows"] > default["rows"]


def test_expired_and_malformed_datasets(client: TestClient) -> None:
    qid = run(client, {"start_date": "2026-06-01", "end_date": "2026-06-07"})["query_id"]
    assert client.get(f"/api/reject-history/list?query_id={qid}&sort=TXNDATE;DROP").status_code == 400
    assert client.get(f"/api/reject-history/pareto?query_id={qid}&dimension=colour").status_code == 400
    assert client.get("/api/reject-history/summary?query_id=../../etc").status_code == 400
    drop_dataset(PREFIX, qid)
    for view in ("summary", "trend", "reason-pareto", "list", "export"):
        resp = client.get(f"/api/reject-history/{view}?query_id={qid}")
        assert resp.status_code == 410, view
        assert resp.json()["code"] == "CACHE_EXPIRED"


def test_without_redis_the_job_runs_in_process(local_client: TestClient, tiny_warehouse: Warehouse) -> None:
    resp = local_client.post("/api/reject-history/query", json=YEAR)
    assert resp.status_code == 202, resp.text
    status_url = resp.json()["status_url"]
    for _ in range(300):
        status = local_client.get(status_url).json()
        if status["status"] not in ("queued", "started"):
            break
        time.sleep(0.05)
    assert status["status"] == "finished", status
    assert status["progress"]["total"] == 12 and status["progress"]["pct"] == 100.0
    result = local_client.get(resp.json()["result_url"]).json()["result"]
    expected = direct(tiny_warehouse, YEAR["start_date"], YEAR["end_date"])
    summary = local_client.get(f"/api/reject-history/summary?query_id={result['query_id']}").json()
    assert summary["summary"]["rows"] == result["rows"] == expected["n"]
    assert summary["summary"]["charged_off_qty"] == pytest.approx(expected["charged"])
