"""Mid-section defect analysis on the tiny warehouse (both dialects): planted excursions are
the top suspects, totals equal direct SQL, no value exceeds the cohort, bad input is 400."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scipy.stats import fisher_exact

from mesdash.app import create_app
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.msd.schemas import AnalysisParams
from mesdash.msd.service import compute
from mesdash.synth.manifest import load_manifest

STATION = "測試"


@pytest.fixture
def client(tiny_warehouse: Warehouse) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as test_client:
        yield test_client


def _excursion(wh: Warehouse, kind: str) -> dict[str, Any]:
    manifest = load_manifest(wh)
    assert manifest is not None
    return next(e for e in manifest["excursions"] if e["kind"] == kind)


def _detection_window(excursion: dict[str, Any], lag_days: int) -> tuple[date, date]:
    """The days the exposed lots reach final test: the window, shifted by the cycle time."""
    start = datetime.fromisoformat(excursion["window"]["start"]).date()
    end = datetime.fromisoformat(excursion["window"]["end"]).date()
    return start + timedelta(days=2), end + timedelta(days=lag_days)


def _analysis(wh: Warehouse, start: date, end: date, **extra: Any) -> dict[str, Any]:
    params = {"station": STATION, **extra}
    return compute(wh, AnalysisParams(start_date=start, end_date=end, **params))["summary"]


def test_planted_machine_is_the_top_suspect(tiny_warehouse: Warehouse) -> None:
    planted = _excursion(tiny_warehouse, "machine")
    start, end = _detection_window(planted, 6)
    result = _analysis(tiny_warehouse, start, end)
    top = result["suspects"][0]
    assert (top["dimension"], top["id"], top["name"]) == (
        "machine",
        planted["resource_id"],
        planted["resource_name"],
    )
    assert top["workcenter_group"] == planted["station_group"]
    assert top["q_value"] < 0.01 and top["p_value"] <= top["q_value"]
    assert top["lift"] > 1.3
    machines = [s for s in result["suspects"] if s["dimension"] == "machine"]
    assert machines[0]["id"] == planted["resource_id"]


def test_planted_material_lot_is_the_top_suspect(tiny_warehouse: Warehouse) -> None:
    planted = _excursion(tiny_warehouse, "material")
    start, end = _detection_window(planted, 8)
    result = _analysis(tiny_warehouse, start, end)
    top = result["suspects"][0]
    assert (top["dimension"], top["name"], top["id"]) == (
        "material",
        planted["material_lot"],
        planted["material_part"],
    )
    assert top["workcenter_group"] == planted["station_group"]
    assert top["q_value"] < 0.01


def test_suspect_p_values_are_one_sided_fisher(tiny_warehouse: Warehouse) -> None:
    result = _analysis(tiny_warehouse, date(2026, 5, 22), date(2026, 6, 16))
    kpi = result["kpi"]
    n, bad = kpi["lots"], kpi["defective_lots"]
    ps = [s["p_value"] for s in result["suspects"]]
    assert ps == sorted(ps)
    assert all(s["lot_count"] >= 5 for s in result["suspects"])
    for s in result["suspects"][:8]:
        a, k = s["defective_lots"], s["lot_count"]
        _, p = fisher_exact([[a, k - a], [bad - a, n - k - (bad - a)]], alternative="greater")
        assert s["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)
        assert s["p_value"] <= s["q_value"] <= 1


def _direct_totals(
    wh: Warehouse, start: date, end: date, reason: str | None = None
) -> tuple[int, float, float]:
    """Lots, input (largest load per lot) and defects (six buckets) with plain SQL."""
    groups = "(SELECT DISTINCT SPEC FROM dwh.DW_MES_SPEC_WORKCENTER_V WHERE WORK_CENTER_GROUP = :station)"
    lo, hi = datetime.combine(start, datetime.min.time()) + timedelta(hours=7, minutes=30), None
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time()) + timedelta(hours=7, minutes=30)
    binds = {"station": STATION, "lo": lo, "hi": hi}
    loads = wh.read_sql_df(
        f"SELECT CONTAINERID, MAX(TRACKINQTY) AS Q FROM dwh.DW_MES_LOTWIPHISTORY WHERE SPECNAME IN {groups} "
        "AND EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP >= :lo AND TRACKINTIMESTAMP < :hi GROUP BY CONTAINERID",
        binds,
    ).to_dicts()
    lots = {r["CONTAINERID"] for r in loads}
    rejects = wh.read_sql_df(
        "SELECT CONTAINERID, LOSSREASONNAME, COALESCE(REJECTQTY, 0) + COALESCE(STANDBYQTY, 0) "
        "+ COALESCE(QTYTOPROCESS, 0) + COALESCE(INPROCESSQTY, 0) + COALESCE(PROCESSEDQTY, 0) "
        f"+ COALESCE(DEFECTQTY, 0) AS Q FROM dwh.DW_MES_LOTREJECTHISTORY WHERE SPECNAME IN {groups} "
        "AND TXNDATE >= :lo AND TXNDATE < :hi",
        binds,
    ).to_dicts()
    excluded = {
        r[0]
        for r in wh.read_sql_df(
            "SELECT REASON_NAME FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE WHERE ENABLE_FLAG = 'Y'"
        ).rows
    }

    def kept(name: str | None) -> bool:
        ok = bool(name) and name[:3].isdigit() and name[3:4] == "_"  # type: ignore[index]
        return ok and name[:3] not in excluded and name not in excluded  # type: ignore[index]

    defect = sum(
        r["Q"]
        for r in rejects
        if r["CONTAINERID"] in lots
        and kept(r["LOSSREASONNAME"])
        and (reason is None or r["LOSSREASONNAME"] == reason)
    )
    return len(lots), float(sum(r["Q"] for r in loads)), float(defect)


def test_totals_equal_a_direct_sql_aggregate_and_no_value_exceeds_the_cohort(
    tiny_warehouse: Warehouse,
) -> None:
    start, end = date(2026, 5, 1), date(2026, 6, 30)
    result = _analysis(tiny_warehouse, start, end)
    kpi = result["kpi"]
    lots, input_qty, defect = _direct_totals(tiny_warehouse, start, end)
    assert (kpi["lots"], kpi["input_qty"], kpi["defect_qty"]) == (lots, input_qty, defect)
    assert lots > 100 and defect > 0
    for name, items in result["charts"].items():
        assert items, name
        for item in items:
            assert item["lot_count"] <= kpi["lots"], (name, item)
            assert item["defect_qty"] <= kpi["defect_qty"] + 1e-9, (name, item)
            assert item["input_qty"] <= kpi["input_qty"] + 1e-9, (name, item)
        assert items[-1]["cumulative_pct"] == pytest.approx(100.0)
    # every lot has one workflow and at least one detection machine: those paretos add up
    for chart in ("by_workflow", "by_loss_reason"):
        assert sum(i["defect_qty"] for i in result["charts"][chart]) == pytest.approx(kpi["defect_qty"])
    assert sum(i["lot_count"] for i in result["charts"]["by_workflow"]) == kpi["lots"]
    assert sum(d["lots"] for d in result["daily_trend"]) == kpi["lots"]
    assert result["quality"]["status"] == "complete"


def test_loss_reason_filter_changes_the_numerator_not_the_population(tiny_warehouse: Warehouse) -> None:
    start, end = date(2026, 5, 1), date(2026, 6, 30)
    everything = _analysis(tiny_warehouse, start, end)
    reason = everything["kpi"]["top_reason"]
    only = _analysis(tiny_warehouse, start, end, loss_reasons=[reason])
    assert only["kpi"]["lots"] == everything["kpi"]["lots"]
    assert only["kpi"]["input_qty"] == everything["kpi"]["input_qty"]
    assert only["kpi"]["defect_qty"] == _direct_totals(tiny_warehouse, start, end, reason)[2]
    assert only["kpi"]["defect_qty"] < everything["kpi"]["defect_qty"]
    assert [i["name"] for i in only["charts"]["by_loss_reason"]] == [reason]


def test_batched_detection_and_seed_batches_equal_one_pass(
    tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = date(2026, 4, 17), date(2026, 6, 30)
    one = _analysis(tiny_warehouse, start, end)
    monkeypatch.setenv("BATCH_QUERY_TIME_THRESHOLD_DAYS", "10")
    monkeypatch.setenv("MSD_SEED_BATCH_SIZE", "7")  # genealogy and events of 7 lots at a time
    from mesdash.settings import reset_settings

    reset_settings()
    many = _analysis(tiny_warehouse, start, end)
    assert many["kpi"] == one["kpi"]
    assert many["suspects"] == one["suspects"]
    assert many["charts"] == one["charts"]


def test_forward_reports_downstream_groups(tiny_warehouse: Warehouse) -> None:
    planted = _excursion(tiny_warehouse, "machine")
    start = datetime.fromisoformat(planted["window"]["start"]).date()
    end = datetime.fromisoformat(planted["window"]["end"]).date()
    result = _analysis(tiny_warehouse, start, end, station=planted["station_group"], direction="forward")
    fwd = result["forward"]
    assert fwd["defective_lots"] == result["kpi"]["defective_lots"] > 0
    groups = [g["workcenter_group"] for g in fwd["by_group"]]
    assert groups and set(groups) <= set(planted["downstream_groups"]) | {STATION}
    for g in fwd["by_group"]:
        assert g["lots_reached"] <= fwd["defective_lots"] + fwd["descendants"]
        assert g["amplification"] == pytest.approx(g["reject_rate"] / fwd["detection_rate"], rel=1e-2)
    assert sum(g["reject_qty"] for g in fwd["by_group"]) == pytest.approx(
        sum(r["reject_qty"] for r in fwd["by_reason"])
    )


# ------------------------------------------------------------------------- API --------
def test_api_analysis_detail_export(client: TestClient) -> None:
    resp = client.get(
        "/api/mid-section-defect/analysis",
        params={"start_date": "2026-05-22", "end_date": "2026-06-16", "station": STATION},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) >= {"kpi", "charts", "suspects", "daily_trend", "quality", "as_of", "query_id"}
    assert set(body["charts"]) == {
        "by_machine",
        "by_material",
        "by_wafer_root",
        "by_workflow",
        "by_detection_machine",
        "by_loss_reason",
    }
    qid = body["query_id"]
    page = client.get(
        "/api/mid-section-defect/analysis/detail",
        params={"query_id": qid, "page_size": 10, "sort": "defect_qty"},
    ).json()
    assert len(page["data"]) == 10 and page["total"] >= body["kpi"]["lots"]
    qtys = [r["defect_qty"] for r in page["data"]]
    assert qtys == sorted(qtys, reverse=True)
    csv = client.get("/api/mid-section-defect/export", params={"query_id": qid})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.count("\n") == page["total"] + 1
    stations = client.get("/api/mid-section-defect/stations").json()["data"]
    assert [s["workcenter_group"] for s in stations][-1] == STATION
    reasons = client.get("/api/mid-section-defect/loss-reasons", params={"station": STATION}).json()["data"]
    assert any(r["name"] == "250_VF" for r in reasons)


def test_api_container_mode_equals_date_mode_for_the_same_lots(client: TestClient) -> None:
    dated = client.get(
        "/api/mid-section-defect/analysis", params={"start_date": "2026-05-22", "end_date": "2026-06-16"}
    ).json()
    detail = client.get(
        "/api/mid-section-defect/analysis/detail", params={"query_id": dated["query_id"], "page_size": 1000}
    ).json()["data"]
    names = sorted({r["lot_id"] for r in detail})
    body = {
        "input_type": "lot_id",
        "values": [*names, "NO-SUCH-LOT"],
        "start_date": "2026-05-22",
        "end_date": "2026-06-16",
    }
    resp = client.post("/api/mid-section-defect/analysis", json=body)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["mode"] == "container" and got["not_found"] == ["NO-SUCH-LOT"]
    assert got["kpi"] == dated["kpi"]
    assert got["suspects"][0]["id"] == dated["suspects"][0]["id"]


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "2026-06-10", "end_date": "2026-06-01"},
        {"start_date": "2024-01-01", "end_date": "2026-06-01"},
        {"start_date": "2026-06-01", "end_date": "2026-06-10", "station": "NO-SUCH-STATION"},
        {"start_date": "2026-06-01"},
        {"start_date": "2026-06-01", "end_date": "2026-06-10", "direction": "sideways"},
        {"start_date": "2026-06-01", "end_date": "2026-06-10", "include_excluded_scrap": "t"},
        {"start_date": "2026-06-01", "end_date": "2026-06-10", "min_lots": "0"},
        {"start_date": "not-a-date", "end_date": "2026-06-10"},
    ],
)
def test_bad_analysis_input_is_400(client: TestClient, params: dict[str, str]) -> None:
    resp = client.get("/api/mid-section-defect/analysis", params=params)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "VALIDATION_ERROR"


def test_bad_container_and_detail_input(client: TestClient) -> None:
    none = client.post(
        "/api/mid-section-defect/analysis", json={"input_type": "lot_id", "values": ["NO-SUCH"]}
    )
    assert none.status_code == 400 and none.json()["code"] == "VALIDATION_ERROR"
    empty = client.post("/api/mid-section-defect/analysis", json={"input_type": "lot_id", "values": []})
    assert empty.status_code == 400
    bad_type = client.post("/api/mid-section-defect/analysis", json={"input_type": "x", "values": ["a"]})
    assert bad_type.status_code == 400
    gone = client.get("/api/mid-section-defect/analysis/detail", params={"query_id": "0123456789abcdef"})
    assert gone.status_code == 410 and gone.json()["code"] == "CACHE_EXPIRED"
    sort = client.get("/api/mid-section-defect/analysis/detail", params={"query_id": "x", "sort": "nope"})
    assert sort.status_code == 400


def test_big_analysis_runs_as_a_job_then_answers_200(
    client: TestClient, tiny_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import time

    from mesdash.core.db.warehouse import reset_warehouse
    from mesdash.settings import reset_settings

    monkeypatch.setenv("MSD_SYNC_MAX_DAYS", "5")
    monkeypatch.setenv("MESDASH_DATABASE_URL", tiny_url)
    monkeypatch.setenv("MESDASH_SPOOL_DIR", str(tmp_path))
    reset_settings()
    reset_warehouse()
    params = {"start_date": "2026-05-22", "end_date": "2026-06-16"}
    try:
        first = client.get("/api/mid-section-defect/analysis", params=params)
        assert first.status_code == 202, first.text
        job = first.json()
        assert job["kind"] == "msd" and job["status_url"] == f"/api/jobs/{job['job_id']}"
        deadline = time.monotonic() + 60
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = client.get(job["status_url"]).json()
            if status["status"] in ("finished", "failed"):
                break
            time.sleep(0.2)
        assert status["status"] == "finished", status
        done = client.get("/api/mid-section-defect/analysis", params=params)
        assert done.status_code == 200
        assert done.json()["query_id"] == status["result"]["query_id"]
        assert done.json()["kpi"] == status["result"]["kpi"]
    finally:
        reset_warehouse()


def test_suspect_drill_down_covers_the_suspects_lots(client: TestClient) -> None:
    body = client.get(
        "/api/mid-section-defect/analysis", params={"start_date": "2026-05-22", "end_date": "2026-06-16"}
    ).json()
    top = body["suspects"][0]
    resp = client.get(
        "/api/mid-section-defect/analysis/suspect", params={"query_id": body["query_id"], "rank": 1}
    )
    assert resp.status_code == 200, resp.text
    found = resp.json()
    assert found["suspect"] == top
    assert len(found["container_ids"]) == top["lot_count"]
    assert sum(d["lots"] for d in found["daily"]) == top["lot_count"]
    assert sum(d["defect_qty"] for d in found["daily"]) == pytest.approx(top["defect_qty"])
    assert sum(d["lots"] for d in found["daily"] + found["rest_daily"]) == body["kpi"]["lots"]
    bad = client.get(
        "/api/mid-section-defect/analysis/suspect", params={"query_id": body["query_id"], "rank": 10_000}
    )
    assert bad.status_code == 400


# ----------------------------------------------------- in-memory reference -------------
def _reference_by_machine(
    wh: Warehouse, start: date, end: date
) -> dict[tuple[str, str, str], tuple[int, float]]:
    """Upstream machines per detected lot from raw rows, with a plain breadth-first genealogy
    (split parents and merge sources, existing containers, depth ≤ 20) and the same rules:
    groups strictly before the station, an ancestor's step only before its child on the
    way started. Returns ``{(name, id, group): (lots, input)}``."""
    spec: dict[str, tuple[str, str]] = {}
    for s, g, o in wh.read_sql_df(
        "SELECT SPEC, WORK_CENTER_GROUP, WORKCENTERSEQUENCE_GROUP FROM dwh.DW_MES_SPEC_WORKCENTER_V"
    ).rows:
        if s not in spec or (g, o) < spec[s]:
            spec[s] = (g, o)
    station_order = int(min(o for g, o in spec.values() if g == STATION))
    rows = wh.read_sql_df(
        "SELECT CONTAINERID, WORKCENTERNAME, SPECNAME, EQUIPMENTID, EQUIPMENTNAME, TRACKINTIMESTAMP, TRACKINQTY "
        "FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL"
    ).rows
    latest: dict[tuple[str, str, str], tuple[Any, str, str]] = {}
    lo = datetime.combine(start, datetime.min.time()) + timedelta(hours=7, minutes=30)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time()) + timedelta(hours=7, minutes=30)
    loads: dict[str, float] = {}
    for cid, wc, sp, eq, name, t, qty in rows:
        group, _ = spec.get(sp, ("", "999"))
        key = (cid, wc, eq)
        if key not in latest or t > latest[key][0]:
            latest[key] = (t, name, sp)
        if group == STATION and lo <= t < hi:
            loads[cid] = max(loads.get(cid, 0.0), float(qty or 0))
    events: dict[str, list[tuple[Any, tuple[str, str, str], int]]] = {}
    for (cid, _wc, eq), (t, name, sp) in latest.items():
        group, order = spec.get(sp, ("", "999"))
        events.setdefault(cid, []).append((t, (name or "", eq, group or ""), int(order)))
    born = {cid: min(t for t, _, _ in evs) for cid, evs in events.items()}
    exists = {r[0] for r in wh.read_sql_df("SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER").rows}
    parents: dict[str, set[str]] = {}
    for cid, parent in wh.read_sql_df("SELECT CONTAINERID, SPLITFROMID FROM dwh.DW_MES_CONTAINER").rows:
        if parent and parent != cid and parent in exists:
            parents.setdefault(cid, set()).add(parent)
    for source, lot in wh.read_sql_df("SELECT CONTAINERID, LOTID FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS").rows:
        if source and source != lot and source in exists:
            parents.setdefault(lot, set()).add(source)
    out: dict[tuple[str, str, str], tuple[int, float]] = {}
    for lot, load in loads.items():
        closure, frontier = {lot}, [lot]
        children: dict[str, set[str]] = {}
        for _ in range(20):
            nxt = []
            for c in frontier:
                for p in parents.get(c, ()):
                    children.setdefault(p, set()).add(c)
                    if p not in closure:
                        closure.add(p)
                        nxt.append(p)
            frontier = nxt
        machines = set()
        for c in closure:
            kids = [born[k] for k in children.get(c, ()) if k in closure and k in born] if c != lot else []
            cutoff = max(kids) if kids else None
            for t, machine, step_order in events.get(c, []):
                if step_order < station_order and (cutoff is None or t < cutoff):
                    machines.add(machine)
        for m in machines:
            n, q = out.get(m, (0, 0.0))
            out[m] = (n + 1, q + load)
    return out


def test_machine_attribution_equals_an_in_memory_reference(tiny_warehouse: Warehouse) -> None:
    start, end = date(2026, 5, 1), date(2026, 6, 30)
    got = {
        (i["name"], i["id"], i["workcenter_group"]): (i["lot_count"], i["input_qty"])
        for i in _analysis(tiny_warehouse, start, end)["charts"]["by_machine"]
    }
    assert got == _reference_by_machine(tiny_warehouse, start, end)
