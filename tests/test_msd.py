"""Mid-section defect analysis on the tiny warehouse (both dialects): planted excursions are
the top suspects, totals equal direct SQL, every dimension and the KPI equal a plain in-memory
reference, no value exceeds the cohort, forward from the planted molding case amplifies at
plating, bad input is 400."""

from __future__ import annotations

from collections import defaultdict
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


def test_forward_on_the_planted_case_amplifies_at_its_downstream_group(tiny_warehouse: Warehouse) -> None:
    """The manifest's forward case: lots molded on one machine inside a window lose a little
    at molding (front reason) and much more at plating (downstream reason). Forward from
    molding over that window: plating's reject rate is several times the detection rate and
    far above every other group's, and the planted (front, downstream) reason pair tops the matrix. The
    same length of days before the window: plating shows nothing."""
    planted = _excursion(tiny_warehouse, "forward")
    start = datetime.fromisoformat(planted["window"]["start"]).date()
    end = datetime.fromisoformat(planted["window"]["end"]).date() - timedelta(days=1)
    station, down = planted["station_group"], planted["downstream_group"]
    result = _analysis(tiny_warehouse, start, end, station=station, direction="forward")
    fwd = result["forward"]
    groups = {g["workcenter_group"]: g for g in fwd["by_group"]}
    assert down in groups and fwd["defective_lots"] == result["kpi"]["defective_lots"] > 10
    assert groups[down]["amplification"] > 2
    assert groups[down]["amplification"] == pytest.approx(
        groups[down]["reject_rate"] / fwd["detection_rate"], rel=1e-2
    )
    others = [g["amplification"] or 0.0 for name, g in groups.items() if name != down]
    assert others and groups[down]["amplification"] > 3 * max(others)
    assert fwd["by_reason"][0]["name"] == planted["downstream_reason"]
    top, second = fwd["reason_matrix"][:2]
    assert (top["front_reason"], top["downstream_reason"]) == (
        planted["front_reason"],
        planted["downstream_reason"],
    )
    assert top["lots"] >= 2 * second["lots"]
    assert result["kpi"]["top_reason"] == planted["front_reason"]
    # the planted machine is the first suspect of a backward analysis at molding, too
    backward = _analysis(tiny_warehouse, start, end, station=station)
    first = backward["suspects"][0]
    assert (first["dimension"], first["id"]) == ("detection_machine", planted["resource_id"])

    days = (end - start).days + 1
    before = _analysis(
        tiny_warehouse,
        start - timedelta(days=days),
        start - timedelta(days=1),
        station=station,
        direction="forward",
    )["forward"]
    plating = next(g for g in before["by_group"] if g["workcenter_group"] == down)
    assert plating["amplification"] < 1


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
CHARTS = {
    "machine": "by_machine",
    "material": "by_material",
    "wafer_root": "by_wafer_root",
    "workflow": "by_workflow",
    "detection_machine": "by_detection_machine",
    "loss_reason": "by_loss_reason",
}
Key = tuple[str, str, str]  # (name, id, group) as the charts show them, "" for none
Reference = dict[str, dict[Key, tuple[int, float, float]]]  # dimension → value → (lots, input, defect)


def _by_ids(wh: Warehouse, head: str, ids: set[str]) -> list[tuple[Any, ...]]:
    """``head`` + ``CONTAINERID IN (...)``, 500 bound ids at a time."""
    out: list[tuple[Any, ...]] = []
    ordered = sorted(ids)
    for first in range(0, len(ordered), 500):
        binds = {f"c{i}": cid for i, cid in enumerate(ordered[first : first + 500])}
        marks = ", ".join(f":{name}" for name in binds)
        out.extend(wh.read_sql_df(f"{head} CONTAINERID IN ({marks})", binds).rows)
    return out


def _reference(
    wh: Warehouse, start: date, end: date, station: str = STATION
) -> tuple[dict[str, Any], Reference]:
    """The backward analysis from raw rows in plain Python, sharing no code with mesdash.msd.

    Cohort: lots with a machine track-in at the station's specs inside the factory-day
    window (the container exists); input = the largest TRACKINQTY there; defects = the six
    buckets at the station in the window, reason policy applied. Genealogy: breadth-first
    over SPLITFROMID and COMBINEDASSYLOTS (existing containers, at most 20 edges). Machines:
    each container's latest track-in per (work center, machine); a container is born at the
    earliest of those. Upstream = station groups ordered strictly before the station; an
    ancestor's machine step or material only counts before its child on the way to the lot
    was born. Wafer roots: FIRSTNAME of the lot and its ancestors. Every (value, lot) pair
    counts once. Returns (KPI, ``{dimension: {(name, id, group): (lots, input, defect)}}``)."""
    spec_group: dict[str, str] = {}
    spec_order: dict[str, int] = {}
    group_order: dict[str, int] = {}
    for spec, group, order in wh.read_sql_df(
        "SELECT SPEC, WORK_CENTER_GROUP, WORKCENTERSEQUENCE_GROUP FROM dwh.DW_MES_SPEC_WORKCENTER_V"
    ).rows:
        spec_group[spec] = min(spec_group.get(spec, group), group)
        spec_order[spec] = min(spec_order.get(spec, 999), int(order))
        group_order[group] = min(group_order.get(group, 999), int(order))
    station_order = group_order[station]
    lo = datetime.combine(start, datetime.min.time()) + timedelta(hours=7, minutes=30)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time()) + timedelta(hours=7, minutes=30)
    window = {"lo": lo, "hi": hi}

    wafer: dict[str, str | None] = {}
    split_parent: dict[str, str | None] = {}
    for cid, parent, first in wh.read_sql_df(
        "SELECT CONTAINERID, SPLITFROMID, FIRSTNAME FROM dwh.DW_MES_CONTAINER"
    ).rows:
        wafer[cid], split_parent[cid] = (first or "").strip() or None, parent
    parents: dict[str, set[str]] = defaultdict(set)
    for cid, parent in split_parent.items():
        if parent and parent != cid and parent in wafer:
            parents[cid].add(parent)
    for source, lot in wh.read_sql_df("SELECT CONTAINERID, LOTID FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS").rows:
        if source and source != lot and source in wafer:
            parents[lot].add(source)

    # the cohort: loads, workflow, detection machines, defects by reason
    lots: dict[str, dict[str, Any]] = {}
    for cid, eq, name, flow, spec, t, qty in wh.read_sql_df(
        "SELECT CONTAINERID, EQUIPMENTID, EQUIPMENTNAME, WORKFLOWNAME, SPECNAME, TRACKINTIMESTAMP, TRACKINQTY "
        "FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL "
        "AND TRACKINTIMESTAMP >= :lo AND TRACKINTIMESTAMP < :hi",
        window,
    ).rows:
        if spec_group.get(spec) != station or cid not in wafer:
            continue
        lot = lots.setdefault(cid, {"input": 0.0, "flows": [], "detection": set(), "reasons": {}})
        lot["input"] = max(lot["input"], float(qty or 0))
        lot["flows"].append((t, flow or ""))
        lot["detection"].add(((name or "").strip(), eq.strip(), station))
    excluded = {
        r[0]
        for r in wh.read_sql_df(
            "SELECT REASON_NAME FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE WHERE ENABLE_FLAG = 'Y'"
        ).rows
    }
    for cid, spec, reason, *buckets in wh.read_sql_df(
        "SELECT CONTAINERID, SPECNAME, LOSSREASONNAME, REJECTQTY, STANDBYQTY, QTYTOPROCESS, INPROCESSQTY, "
        "PROCESSEDQTY, DEFECTQTY FROM dwh.DW_MES_LOTREJECTHISTORY WHERE TXNDATE >= :lo AND TXNDATE < :hi",
        window,
    ).rows:
        name = reason or ""
        kept = name[:3].isdigit() and name[3:4] == "_" and name[:3] not in excluded and name not in excluded
        if cid in lots and spec_group.get(spec) == station and kept:
            found = lots[cid]["reasons"]
            found[name] = found.get(name, 0.0) + sum(float(q or 0) for q in buckets)

    # genealogy: the closure and, inside it, who is whose child
    closures: dict[str, set[str]] = {}
    children: dict[str, dict[str, set[str]]] = {}
    for lot_id in lots:
        closure, frontier, kids = {lot_id}, [lot_id], defaultdict(set)
        for _ in range(20):
            step = []
            for c in frontier:
                for p in parents.get(c, ()):
                    kids[p].add(c)
                    if p not in closure:
                        closure.add(p)
                        step.append(p)
            frontier = step
        closures[lot_id], children[lot_id] = closure, kids
    members = set().union(*closures.values()) if closures else set()

    latest: dict[tuple[str, str, str], tuple[tuple[Any, ...], str, str]] = {}
    for cid, wc, spec, eq, name, t, qty, t_out in _by_ids(
        wh,
        "SELECT CONTAINERID, WORKCENTERNAME, SPECNAME, EQUIPMENTID, EQUIPMENTNAME, TRACKINTIMESTAMP, "
        "TRACKINQTY, TRACKOUTTIMESTAMP FROM dwh.DW_MES_LOTWIPHISTORY "
        "WHERE EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL AND",
        members,
    ):
        rank = (t, float(qty or 0), t_out or t)
        if (cid, wc, eq) not in latest or rank > latest[(cid, wc, eq)][0]:
            latest[(cid, wc, eq)] = (rank, name or "", spec)
    machines: dict[str, list[tuple[Any, Key]]] = defaultdict(list)
    born: dict[str, Any] = {}
    for (cid, _wc, eq), ((t, _, _), name, spec) in latest.items():
        born[cid] = min(born.get(cid, t), t)
        if spec_order.get(spec, 999) < station_order:
            machines[cid].append((t, (name, eq.strip(), spec_group.get(spec) or "")))
    materials: dict[str, list[tuple[Any, Key]]] = defaultdict(list)
    for cid, part, material_lot, spec, t in _by_ids(
        wh,
        "SELECT CONTAINERID, MATERIALPARTNAME, MATERIALLOTNAME, SPECNAME, TXNDATE "
        "FROM dwh.DW_MES_LOTMATERIALSHISTORY WHERE",
        members,
    ):
        group = spec_group.get(spec) or ""
        if group_order.get(group, 999) < station_order:
            materials[cid].append((t, (material_lot or "", part or "", group)))

    out: Reference = {dimension: {} for dimension in CHARTS}

    def add(dimension: str, key: Key, input_qty: float, defect: float) -> None:
        lots_, in_, def_ = out[dimension].get(key, (0, 0.0, 0.0))
        out[dimension][key] = (lots_ + 1, in_ + input_qty, def_ + defect)

    for lot_id, lot in lots.items():
        closure, kids = closures[lot_id], children[lot_id]
        values: dict[str, set[Key]] = {d: set() for d in ("machine", "material", "wafer_root")}
        for c in closure:
            borns = [born[k] for k in kids.get(c, ()) if k in closure and k in born] if c != lot_id else []
            cutoff = max(borns) if borns else None
            for dimension, events in (("machine", machines), ("material", materials)):
                values[dimension] |= {
                    v for t, v in events.get(c, []) if cutoff is None or t is None or t < cutoff
                }
            if wafer.get(c):
                values["wafer_root"].add((str(wafer[c]), "", ""))
        first = min(t for t, _ in lot["flows"])
        flow = max(f for t, f in lot["flows"] if t == first)
        values["workflow"] = {(flow, "", "")} if flow else set()
        values["detection_machine"] = lot["detection"]
        defect = sum(lot["reasons"].values())
        for dimension, keys in values.items():
            for key in keys:
                add(dimension, key, lot["input"], defect)
        for reason, qty in lot["reasons"].items():
            if qty > 0:
                add("loss_reason", (reason, "", ""), lot["input"], qty)
    reasons = out["loss_reason"]
    kpi = {
        "lots": len(lots),
        "defective_lots": sum(1 for lot in lots.values() if sum(lot["reasons"].values()) > 0),
        "input_qty": sum(lot["input"] for lot in lots.values()),
        "defect_qty": sum(sum(lot["reasons"].values()) for lot in lots.values()),
        "top_reason": max(reasons, key=lambda k: (reasons[k][2], k))[0] if reasons else None,
        "machines_involved": len(out["machine"]),
    }
    return kpi, out


def check_against_reference(wh: Warehouse, start: date, end: date) -> dict[str, Any]:
    """Every backward dimension (lots, input and defects per value, exactly) and the KPI of
    the analysis equal the plain reference above; returns the reference KPI."""
    result = _analysis(wh, start, end)
    kpi, expected = _reference(wh, start, end)
    got = {
        dimension: {
            (i["name"], i["id"] or "", i["workcenter_group"] or ""): (
                i["lot_count"],
                i["input_qty"],
                i["defect_qty"],
            )
            for i in result["charts"][chart]
        }
        for dimension, chart in CHARTS.items()
    }
    for dimension in CHARTS:
        assert expected[dimension], dimension
        assert got[dimension] == expected[dimension], dimension
    assert {k: result["kpi"][k] for k in kpi} == kpi
    return kpi


def test_attribution_and_kpi_equal_an_in_memory_reference(tiny_warehouse: Warehouse) -> None:
    kpi = check_against_reference(tiny_warehouse, date(2026, 5, 1), date(2026, 6, 30))
    assert kpi["lots"] > 100 and kpi["defective_lots"] > 10 and kpi["machines_involved"] > 20
