"""Equipment history: validation, E10 hours and percentages against rules written out in
Python over raw rows (state held = OLDSTATUSNAME, 07:30 factory day), views and export from
the cache only, decomposition, progress, the API. DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mesdash.app import create_app
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.reports.resource import service, views
from mesdash.reports.resource.schemas import ResourceQuery, ResourceRequest, ResourceSelection
from mesdash.settings import reset_settings
from test_batch_support import use_backend

START, END = date(2026, 5, 1), date(2026, 6, 30)
STATES = ("PRD", "SBY", "UDT", "SDT", "EGT", "NST")
SHIFT = timedelta(hours=7, minutes=30)
MACHINES_SQL = """SELECT r.RESOURCEID, r.RESOURCENAME, r.PJ_ISPRODUCTION, w.WORK_CENTER_GROUP
FROM dwh.DW_MES_RESOURCE r LEFT JOIN (SELECT DISTINCT WORK_CENTER, WORK_CENTER_GROUP
FROM dwh.DW_MES_SPEC_WORKCENTER_V) w ON w.WORK_CENTER = r.WORKCENTERNAME
WHERE r.OBJECTCATEGORY IN ('ASSEMBLY', 'WAFERSORT')"""


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> Iterator[None]:
    gen = use_backend(monkeypatch, "local", redis_url, tmp_path / "spool")
    next(gen)
    yield
    next(gen, None)


def fday(ts: datetime) -> date:
    return (ts - SHIFT).date()


def expected(wh: Warehouse, keep: Any = lambda m: True) -> dict[tuple[str, date], dict[str, float]]:
    """(machine name, factory day) → hours per state held, output, NG — from raw rows."""
    machines = {m["RESOURCEID"]: m for m in wh.read_sql_df(MACHINES_SQL).to_dicts() if keep(m)}
    names = {m["RESOURCENAME"]: rid for rid, m in machines.items()}
    lo = datetime.combine(START, datetime.min.time()) + SHIFT
    hi = datetime.combine(END + timedelta(days=1), datetime.min.time()) + SHIFT
    out: dict[tuple[str, date], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in wh.read_sql_df("SELECT HISTORYID, TXNDATE, OLDSTATUSNAME, HOURS FROM dwh.DW_MES_RESOURCESTATUS_SHIFT").to_dicts():
        if r["HISTORYID"] in machines and lo <= r["TXNDATE"] < hi and r["OLDSTATUSNAME"] in STATES:
            out[(machines[r["HISTORYID"]]["RESOURCENAME"], fday(r["TXNDATE"]))][r["OLDSTATUSNAME"]] += float(r["HOURS"])
    for r in wh.read_sql_df("SELECT EQUIPMENTID, TRACKOUTTIMESTAMP, TRACKOUTQTY FROM dwh.DW_MES_LOTWIPHISTORY").to_dicts():
        ts = r["TRACKOUTTIMESTAMP"]
        if r["EQUIPMENTID"] in machines and ts is not None and lo <= ts < hi:
            out[(machines[r["EQUIPMENTID"]]["RESOURCENAME"], fday(ts))]["OUT"] += float(r["TRACKOUTQTY"] or 0)
    qty = ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY", "DEFECTQTY")
    for r in wh.read_sql_df("SELECT * FROM dwh.DW_MES_LOTREJECTHISTORY").to_dicts():
        if r["EQUIPMENTNAME"] in names and lo <= r["TXNDATE"] < hi:
            out[(r["EQUIPMENTNAME"], fday(r["TXNDATE"]))]["NG"] += sum(float(r[c] or 0) for c in qty)
    return out


def e10(h: dict[str, float]) -> dict[str, float | None]:
    loading = sum(h[s] for s in STATES[:5])
    total = loading + h["NST"]
    ou = 100 * h["PRD"] / loading if loading else None
    yld = 100 * h["OUT"] / (h["OUT"] + h["NG"]) if h["OUT"] > 0 else None
    return {"ou_pct": ou, "availability_pct": 100 * (h["PRD"] + h["SBY"] + h["EGT"]) / total if total else None,
            "yield_pct": yld, "oee_pct": ou * yld / 100 if ou is not None and yld is not None else None}


def _sum(groups: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for g in groups:
        for k, v in g.items():
            total[k] += v
    return total


def _machine_hours(truth: dict[tuple[str, date], dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (machine, _), h in truth.items():
        out[machine] += sum(h[s] for s in STATES)
    return dict(out)


def test_requests_are_validated() -> None:
    with pytest.raises(ValidationError, match="limit is 730"):
        ResourceQuery(start_date="2024-07-01", end_date="2026-07-01")
    for bad in ("t", "1.0", "maybe", 2):
        with pytest.raises(ValidationError, match="true/false"):
            ResourceQuery(start_date=START, end_date=END, is_key=bad)
    assert ResourceQuery(start_date=START, end_date=END, is_key="OFF").is_key is False
    assert ResourceQuery(start_date=START, end_date=END, machines="a, b,,a").machines == ("a", "b")
    with pytest.raises(ValidationError):
        ResourceSelection(granularity="quarter")
    with pytest.raises(ValidationError):
        ResourceRequest(start_date=START, end_date=END, granularity="hour")


def test_e10_views_match_raw_rows(tiny_warehouse: Warehouse, local: None) -> None:
    wh = tiny_warehouse
    info = service.build(ResourceQuery(start_date=START, end_date=END), wh)
    truth = expected(wh)
    before = wh.stats.count
    summary = views.summary(info.query_id, ResourceSelection())["summary"]
    total = _sum(list(truth.values()))
    for s in STATES:
        assert summary[f"{s.lower()}_hours"] == pytest.approx(total[s], abs=1e-3)
    assert summary["output_qty"] == pytest.approx(total["OUT"])
    assert summary["ng_qty"] == pytest.approx(total["NG"])
    for k, v in e10(total).items():
        assert summary[k] == pytest.approx(v, rel=1e-9)

    trend = views.trend(info.query_id, ResourceSelection(granularity="month"))["points"]
    assert [p["period"] for p in trend] == ["2026-05-01", "2026-06-01"]
    june = _sum([v for (_, d), v in truth.items() if d.month == 6])
    assert trend[1]["prd_hours"] == pytest.approx(june["PRD"], abs=1e-3)
    assert trend[1]["oee_pct"] == pytest.approx(e10(june)["oee_pct"], rel=1e-9)

    heat = views.heatmap(info.query_id, ResourceSelection(granularity="week"), "availability")
    name = heat["machines"][0]
    week = date.fromisoformat(heat["periods"][2])
    cell = _sum([v for (m, d), v in truth.items() if m == name and week <= d < week + timedelta(days=7)])
    assert heat["z"][0][2] == pytest.approx(e10(cell)["availability_pct"], rel=1e-9)

    top = views.heatmap(info.query_id, ResourceSelection(granularity="week"), "ou", limit=5)
    per_machine = _machine_hours(truth)
    assert top["machines_total"] == len(heat["machines"]) > 5
    assert top["machines"] == sorted(sorted(per_machine, key=lambda m: (-per_machine[m], m))[:5])

    sel = ResourceSelection(granularity="day", machines=(name,))
    page = views.detail(info.query_id, sel, page=1, page_size=10)
    days = sorted(d for (m, d) in truth if m == name)
    assert page["total"] == len(days)
    first = truth[(name, days[0])]
    assert page["rows"][0]["period"] == days[0].isoformat()
    assert page["rows"][0]["ou_pct"] == pytest.approx(e10(first)["ou_pct"], rel=1e-9)
    rows = list(csv.DictReader(io.StringIO(b"".join(views.export_csv(info.query_id, sel)).decode("utf-8-sig"))))
    assert len(rows) == page["total"] and {r["RESOURCENAME"] for r in rows} == {name}
    assert {"PRD", "NST", "OU_PCT", "AVAILABILITY_PCT", "YIELD_PCT", "OEE_PCT"} <= set(rows[0])
    assert wh.stats.count == before  # views and export answered from the cached dataset


def test_machine_filters_and_flags(tiny_warehouse: Warehouse, local: None) -> None:
    wh = tiny_warehouse
    groups = sorted({m["WORK_CENTER_GROUP"] for m in wh.read_sql_df(MACHINES_SQL).to_dicts() if m["WORK_CENTER_GROUP"]})
    q = ResourceQuery(start_date=START, end_date=END, workcenter_groups=groups[:2], is_production="yes")
    info = service.build(q, wh)
    truth = expected(wh, lambda m: m["WORK_CENTER_GROUP"] in groups[:2] and m["PJ_ISPRODUCTION"] == 1)
    summary = views.summary(info.query_id, ResourceSelection())["summary"]
    assert summary["machines"] == len({m for m, _ in truth if sum(truth[(m, d)][s] for d in [d for mm, d in truth if mm == m] for s in STATES) > 0})
    assert summary["prd_hours"] == pytest.approx(_sum(list(truth.values()))["PRD"], abs=1e-3)


def test_decomposed_plan_equals_single_query(
    tiny_warehouse: Warehouse, local: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = ResourceQuery(start_date=START, end_date=END)
    split = service.build(q, tiny_warehouse)
    assert split.chunks == 2 and service.progress(q)["completed"] == 2
    monkeypatch.setenv("BATCH_QUERY_TIME_THRESHOLD_DAYS", "100")
    reset_settings()
    single = service.build(q, tiny_warehouse)
    assert single.chunks == 1 and single.rows == split.rows
    sel = ResourceSelection(granularity="week")
    same(views.trend(split.query_id, sel)["points"], views.trend(single.query_id, sel)["points"])
    same(views.detail(split.query_id, sel, page_size=1000)["rows"],
         views.detail(single.query_id, sel, page_size=1000)["rows"])


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """Equal rows; floats up to summation order (chunks sum in another order)."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], rel=1e-9, abs=1e-9), k
            else:
                assert x[k] == y[k], k


def test_api_round_trip(tiny_warehouse: Warehouse, local: None) -> None:
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as client:
        machines = client.get("/api/resource-history/machines", params={"q": "gdba"}).json()
        assert machines["total"] > 0 and all("gdba" in m["machine"].lower() or "gdba" in (m["family"] or "").lower()
                                             for m in machines["machines"])
        assert machines["options"]["workcenter_groups"]
        body = {"start_date": "2026-05-01", "end_date": "2026-06-30", "granularity": "week"}
        resp = client.post("/api/resource-history/query", json=body)
        assert resp.status_code == 200, resp.text
        qid = resp.json()["query_id"]
        progress = client.get("/api/resource-history/progress", params={"start_date": "2026-05-01",
                                                                         "end_date": "2026-06-30"}).json()
        assert progress["query_id"] == qid and progress["status"] == "completed" and progress["pct"] == 100
        before = tiny_warehouse.stats.count
        params = {"query_id": qid, "granularity": "week"}
        detail = client.get("/api/resource-history/detail", params={**params, "page_size": 5}).json()
        export = client.get("/api/resource-history/export", params=params)
        assert len(export.content.decode("utf-8-sig").splitlines()) - 1 == detail["total"] > 0
        for path in ("summary", "trend", "heatmap"):
            assert client.get(f"/api/resource-history/{path}", params=params).status_code == 200
        assert tiny_warehouse.stats.count == before
        bad = client.post("/api/resource-history/query", json={**body, "is_key": "t"})
        assert bad.status_code == 400 and "is_key" in bad.json()["detail"]
        bad = client.get("/api/resource-history/heatmap", params={**params, "metric": "mtbf"})
        assert bad.status_code == 400
        assert client.get("/api/resource-history/trend", params={"query_id": "nope"}).status_code == 410
        assert client.get("/resource-history").status_code == 200


def _rounded(value: Any) -> Any:
    """Floats to 6 places (sums over chunks merged in another order differ in the last bits)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize("spill", [False, True])
def test_primary_query_rebuilds_what_expired_and_never_answers_410(
    spill: bool, tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> None:
    """Pieces of a kept dataset and of its plan expire by hand (Redis DEL, the spool file
    deleted) between primary queries, and one chunk expires between the plan and the merge
    (it answered 410 ``CACHE_EXPIRED`` in the soak): every primary query answers 200 with
    the same rows. A view by query_id of a dataset whose data is gone stays 410."""
    from mesdash.core.batch.dataset import _arrow_key, dataset_info, plan_hash
    from mesdash.core.batch.spool import QuerySpool
    from mesdash.core.batch.store import ChunkStore
    from mesdash.core.cache import get_l1
    from mesdash.core.redis_client import get_redis
    from mesdash.reports.params import time_plan

    if spill:
        monkeypatch.setenv("REJECT_ENGINE_MAX_TOTAL_ROWS", "1")
    gen = use_backend(monkeypatch, "redis", redis_url, tmp_path / "spool")
    next(gen)
    client_redis = get_redis()
    assert client_redis is not None
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    body = {"start_date": "2026-03-01", "end_date": "2026-06-30"}  # 4 chunks of 31 days
    query = ResourceRequest(**body).query()
    qid = service.query_id_for(query)
    store = ChunkStore(service.PREFIX, plan_hash(qid, time_plan(query)))

    with TestClient(app) as client:
        def primary() -> dict[str, Any]:
            resp = client.post("/api/resource-history/query", json=body)
            assert resp.status_code == 200, resp.text
            data = resp.json()
            assert data["query_id"] == qid and data["spilled"] is spill and data["chunks"] == 4
            return {"rows": data["rows"], **{k: v for k, v in _rounded(data["summary"]).items() if k != "as_of"}}

        first = primary()
        assert first["rows"] > 0
        info = dataset_info(service.PREFIX, qid)
        assert info is not None
        if spill:
            QuerySpool().path_for(service.PREFIX, qid).unlink()  # info kept, file gone
        else:
            client_redis.delete(_arrow_key(info))  # info kept, Arrow copy gone
            get_l1().delete(_arrow_key(info))  # (and this process's copy of it)
        assert client.get("/api/resource-history/summary", params={"query_id": qid}).status_code == 410
        assert primary() == first
        client_redis.delete(store.chunk_key(1))  # plan progress kept, a chunk gone
        assert primary() == first
        client_redis.delete(store.meta_key, store.chunk_key(3))  # progress and a chunk gone
        assert primary() == first

        real_has = ChunkStore.has
        expired: list[int] = []

        def has_then_expires(self: ChunkStore, index: int) -> bool:
            cached = real_has(self, index)
            if cached and not expired:  # cached when the plan looked, gone when the merge reads
                expired.append(index)
                client_redis.delete(self.chunk_key(index))  # type: ignore[union-attr]
            return cached

        monkeypatch.setattr(ChunkStore, "has", has_then_expires)
        assert primary() == first
        assert expired == [0]
        monkeypatch.setattr(ChunkStore, "has", real_has)
        assert client.get("/api/resource-history/summary", params={"query_id": qid}).status_code == 200
    next(gen, None)
