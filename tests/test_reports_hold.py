"""Hold history: request validation, the dataset against rules written out in Python over
raw rows (07:30 factory day, carry-in, record types, durations), views and export from the
cache only, decomposition, the API and the "today" snapshot. DuckDB and PostgreSQL."""

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
from mesdash.reports.hold import service, views
from mesdash.reports.hold.schemas import HoldQuery, HoldRequest, HoldSelection, quality_reasons
from mesdash.settings import reset_settings
from test_batch_support import use_backend

START, END = date(2026, 5, 1), date(2026, 6, 30)  # 61 days: 2 chunks above the threshold
NOW = datetime(2026, 7, 1, 12, 0)
SHIFT = timedelta(hours=7, minutes=30)
RAW = "SELECT * FROM dwh.DW_MES_HOLDRELEASEHISTORY"


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> Iterator[None]:
    gen = use_backend(monkeypatch, "local", redis_url, tmp_path / "spool")
    next(gen)
    yield
    next(gen, None)


@pytest.fixture(params=["redis", "local"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, redis_url: str,
            tmp_path: Path) -> Iterator[str]:
    gen = use_backend(monkeypatch, request.param, redis_url, tmp_path / "spool")
    next(gen)
    yield str(request.param)
    next(gen, None)


def fday(ts: datetime) -> date:
    """The factory day, written out: before 07:30 belongs to the previous date."""
    return ts.date() if ts.time() >= datetime.min.replace(hour=7, minute=30).time() else ts.date() - timedelta(days=1)


def bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, datetime.min.time()) + SHIFT,
            datetime.combine(end + timedelta(days=1), datetime.min.time()) + SHIFT)


def raw_holds(wh: Warehouse, start: date = START, end: date = END) -> list[dict[str, Any]]:
    """Holds created in the range, plus those carried into it (held before, open at start)."""
    lo, hi = bounds(start, end)
    out = []
    for row in wh.read_sql_df(RAW).to_dicts():
        held, rel = row["HOLDTXNDATE"], row["RELEASETXNDATE"]
        if lo <= held < hi or (held < lo and (rel is None or rel >= lo)):
            out.append(row)
    return out


def test_requests_are_validated() -> None:
    HoldQuery(start_date="2024-07-01", end_date="2026-06-30")  # 730 days
    with pytest.raises(ValidationError, match="limit is 730"):
        HoldQuery(start_date="2024-07-01", end_date="2026-07-01")
    with pytest.raises(ValidationError, match="before start_date"):
        HoldQuery(start_date="2026-06-30", end_date="2026-06-01")
    with pytest.raises(ValidationError):
        HoldSelection(hold_type="urgent")
    with pytest.raises(ValidationError, match="record_type must be among"):
        HoldSelection(record_type="new,closed")
    with pytest.raises(ValidationError, match="at least one"):
        HoldSelection(record_type="")
    assert HoldSelection(record_type=["new,released", " new "]).record_type == ("new", "released")
    with pytest.raises(ValidationError):
        HoldRequest(start_date="2026-06-01", end_date="2026-06-02", extra_field=1)


def test_dataset_and_views_match_raw_rows(tiny_warehouse: Warehouse, backend: str) -> None:
    wh = tiny_warehouse
    info = service.build(HoldQuery(start_date=START, end_date=END), wh, now=lambda: NOW)
    raw = raw_holds(wh)
    assert info.rows == len(raw) and info.chunks == 2
    cutoff = bounds(START, END)[1]
    assert info.extra["cutoff"] == cutoff.isoformat()
    lo = bounds(START, END)[0]
    assert any(r["HOLDTXNDATE"] < lo for r in raw)  # a carried-in hold exists
    near = [r for r in raw if abs((r["HOLDTXNDATE"] - SHIFT).time().hour * 3600
                                  + (r["HOLDTXNDATE"] - SHIFT).time().minute * 60) < 60
            or (r["HOLDTXNDATE"] - SHIFT).time() >= datetime.min.replace(hour=23, minute=59).time()]
    assert near, "the tiny fab plants holds around 07:30"

    quality = set(quality_reasons())
    before = wh.stats.count
    series = views.trend(info.query_id)["series"]
    new_by_day = Counter((fday(r["HOLDTXNDATE"]), r["HOLDREASONNAME"] in quality) for r in raw)
    rel_by_day = Counter((fday(r["RELEASETXNDATE"]), r["HOLDREASONNAME"] in quality)
                         for r in raw if r["RELEASETXNDATE"] is not None and r["RELEASETXNDATE"] < cutoff)
    for kind, is_q in (("quality", True), ("non-quality", False)):
        points = series[kind]
        assert len(points) == 61
        for p in points:
            d = date.fromisoformat(p["day"])
            end = bounds(d, d)[1]
            on_hand = [r for r in raw if (r["HOLDREASONNAME"] in quality) == is_q and r["HOLDTXNDATE"] < end
                       and (r["RELEASETXNDATE"] is None or r["RELEASETXNDATE"] >= end)]
            assert p["new"] == new_by_day[(d, is_q)], (kind, d)
            assert p["released"] == rel_by_day[(d, is_q)], (kind, d)
            assert p["on_hand"] == len(on_hand)
            assert p["on_hand_qty"] == sum(r["QTY"] for r in on_hand)
    assert sum(p["new"] for p in series["all"]) == sum(1 for r in raw if r["HOLDTXNDATE"] >= lo)
    assert sum(p["future"] for p in series["all"]) == sum(
        1 for r in raw if r["HOLDTXNDATE"] >= lo and r["FUTUREHOLDCOMMENTS"] is not None)
    seen: set[str] = set()
    repeats = 0
    for r in sorted(raw, key=lambda r: (r["HOLDTXNDATE"], r["HISTORYMAINLINEID"])):
        if r["HOLDREASONNAME"] in quality:
            repeats += r["HOLDTXNDATE"] >= lo and r["CONTAINERID"] in seen
            seen.add(r["CONTAINERID"])
    assert sum(p["repeat_quality"] for p in series["quality"]) == repeats

    # pareto and durations of new quality holds
    sel = HoldSelection(hold_type="quality", record_type="new")
    new_q = [r for r in raw if r["HOLDTXNDATE"] >= lo and r["HOLDREASONNAME"] in quality]
    pareto = views.pareto(info.query_id, sel)["items"]
    assert {i["reason"]: i["holds"] for i in pareto} == dict(Counter(r["HOLDREASONNAME"] for r in new_q))
    assert pareto[-1]["cumulative_pct"] == pytest.approx(100.0)
    buckets = views.durations(info.query_id, sel)["buckets"]

    def hours(r: dict[str, Any]) -> float:
        rel = r["RELEASETXNDATE"] if r["RELEASETXNDATE"] is not None and r["RELEASETXNDATE"] < cutoff else None
        return ((rel or cutoff) - r["HOLDTXNDATE"]).total_seconds() / 3600

    def bucket(h: float) -> str:
        return "<4h" if h < 4 else "4-24h" if h < 24 else "1-3d" if h < 72 else ">3d"

    released = [r for r in new_q if r["RELEASETXNDATE"] is not None and r["RELEASETXNDATE"] < cutoff]
    for b in buckets["released"]:
        inside = [hours(r) for r in released if bucket(hours(r)) == b["bucket"]]
        assert b["holds"] == len(inside)
        if inside:
            assert b["max_hours"] == pytest.approx(max(inside), abs=1e-3)
            assert b["avg_hours"] == pytest.approx(sum(inside) / len(inside), abs=1e-3)
    assert sum(b["holds"] for b in buckets["on_hold"]) == len(new_q) - len(released)

    # KPI cards, the list and the export
    kpis = views.summary(info.query_id, sel)["kpis"]
    assert kpis["new"] == len(new_q) and kpis["avg_new_per_day"] == pytest.approx(len(new_q) / 61)
    page = views.rows_page(info.query_id, sel, page=1, page_size=5, sort="HOLDTXNDATE")
    assert page["total"] == len(new_q)
    assert [r["HISTORYMAINLINEID"] for r in page["rows"]] == [
        r["HISTORYMAINLINEID"] for r in sorted(new_q, key=lambda r: (r["HOLDTXNDATE"], r["HISTORYMAINLINEID"]))][:5]
    rows = list(csv.DictReader(io.StringIO(b"".join(views.export_csv(info.query_id, sel)).decode("utf-8-sig"))))
    assert len(rows) == len(new_q) and {r["HOLD_TYPE"] for r in rows} == {"quality"}
    assert wh.stats.count == before  # every view answered from the cached dataset


def test_day_click_narrows_to_that_factory_day(tiny_warehouse: Warehouse, local: None) -> None:
    wh = tiny_warehouse
    info = service.build(HoldQuery(start_date=START, end_date=END), wh, now=lambda: NOW)
    raw = raw_holds(wh)
    busiest = Counter(fday(r["HOLDTXNDATE"]) for r in raw).most_common(1)[0][0]
    sel = HoldSelection(record_type="new,released", day=busiest)
    lo, hi = bounds(busiest, busiest)
    expected = [r for r in raw if lo <= r["HOLDTXNDATE"] < hi
                or (r["RELEASETXNDATE"] is not None and lo <= r["RELEASETXNDATE"] < hi)]
    assert views.rows_page(info.query_id, sel)["total"] == len(expected)
    assert sum(i["holds"] for i in views.pareto(info.query_id, sel)["items"]) == len(expected)
    with pytest.raises(Exception, match="outside the queried range"):
        views.pareto(info.query_id, HoldSelection(day=date(2026, 7, 5)))


def test_decomposed_plan_equals_single_query(
    tiny_warehouse: Warehouse, local: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = HoldQuery(start_date=START, end_date=END)
    whole = service.build(query, tiny_warehouse, now=lambda: NOW)
    monkeypatch.setenv("BATCH_QUERY_TIME_THRESHOLD_DAYS", "10")
    reset_settings()
    split = service.build(query, tiny_warehouse, now=lambda: NOW)
    monkeypatch.setenv("BATCH_QUERY_TIME_THRESHOLD_DAYS", "100")
    reset_settings()
    single = service.build(query, tiny_warehouse, now=lambda: NOW)
    assert (single.chunks, split.chunks) == (1, 2) and whole.chunks == 2
    assert split.rows == single.rows
    sel = HoldSelection(record_type="new,on_hold,released")
    for view in (views.trend,):
        assert view(split.query_id)["series"] == view(single.query_id)["series"]
    for fn in (views.pareto, views.durations):
        assert fn(split.query_id, sel)["items" if fn is views.pareto else "buckets"] == \
            fn(single.query_id, sel)["items" if fn is views.pareto else "buckets"]
    a = views.rows_page(split.query_id, sel, page_size=1000)["rows"]
    b = views.rows_page(single.query_id, sel, page_size=1000)["rows"]
    assert a == b


@pytest.fixture
def client(tiny_warehouse: Warehouse, local: None) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as test_client:
        yield test_client


def test_api_round_trip(client: TestClient, tiny_warehouse: Warehouse) -> None:
    resp = client.post("/api/hold-history/query", json={"start_date": "2026-05-01", "end_date": "2026-06-30",
                                                       "hold_type": "quality"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    qid = body["query_id"]
    assert body["summary"]["kpis"]["new"] == sum(p["new"] for p in body["trend"]["series"]["quality"])
    before = tiny_warehouse.stats.count
    params = {"query_id": qid, "hold_type": "all", "record_type": "new,on_hold"}
    listed = client.get("/api/hold-history/list", params={**params, "page_size": 10}).json()
    export = client.get("/api/hold-history/export", params=params)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = export.content.decode("utf-8-sig").splitlines()
    assert len(lines) - 1 == listed["total"] > 0
    for path in ("pareto", "durations", "summary"):
        assert client.get(f"/api/hold-history/{path}", params=params).status_code == 200
    assert client.get("/api/hold-history/trend", params={"query_id": qid}).status_code == 200
    assert tiny_warehouse.stats.count == before

    bad = client.post("/api/hold-history/query", json={"start_date": "2024-01-01", "end_date": "2026-06-30"})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"
    bad = client.get("/api/hold-history/pareto", params={**params, "record_type": "closed"})
    assert bad.status_code == 400 and "record_type" in bad.json()["detail"]
    gone = client.get("/api/hold-history/pareto", params={**params, "query_id": "0123456789abcdef"})
    assert gone.status_code == 410 and gone.json()["code"] == "CACHE_EXPIRED"
    assert client.get("/hold-history").status_code == 200


def test_today_snapshot(tiny_warehouse: Warehouse, local: None) -> None:
    now = datetime(2026, 6, 30, 20, 0)
    first = service.today_dataset(tiny_warehouse, now=lambda: now)
    again = service.today_dataset(tiny_warehouse, now=lambda: now + timedelta(seconds=5))
    assert again.query_id == first.query_id  # within the refresh slot: no new read
    later = service.today_dataset(tiny_warehouse, now=lambda: now + timedelta(seconds=61))
    assert later.query_id != first.query_id
    snap = views.today(first)["snapshot"]
    lo = bounds(date(2026, 6, 30), date(2026, 6, 30))[0]
    raw = tiny_warehouse.read_sql_df(RAW).to_dicts()
    on_hold = [r for r in raw if r["HOLDTXNDATE"] < now and (r["RELEASETXNDATE"] is None or r["RELEASETXNDATE"] >= now)]
    new = [r for r in raw if lo <= r["HOLDTXNDATE"] < now]
    released = [r for r in raw if r["RELEASETXNDATE"] is not None and lo <= r["RELEASETXNDATE"] < now]
    assert snap["on_hold"]["all"]["holds"] == len(on_hold)
    assert snap["new"]["all"]["holds"] == len(new)
    assert snap["released"]["all"]["holds"] == len(released)


def test_today_snapshot_whose_data_expired_is_read_again(tiny_warehouse: Warehouse, local: None) -> None:
    """Within one refresh slot the snapshot's info is kept but its data expired: it is read
    again (a new build), never answered 410."""
    from mesdash.core.batch.dataset import _arrow_key
    from mesdash.core.cache import get_l1

    now = datetime(2026, 6, 30, 20, 0)
    first = service.today_dataset(tiny_warehouse, now=lambda: now)
    get_l1().delete(_arrow_key(first))  # the Arrow copy gone, the info not
    again = service.today_dataset(tiny_warehouse, now=lambda: now + timedelta(seconds=5))
    assert again.query_id == first.query_id and again.build_id != first.build_id
    assert views.today(again)["snapshot"] == views.today(first)["snapshot"]
