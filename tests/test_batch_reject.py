"""Reject history on the batch engine: request parsing, the batched primary query against
an independent computation, the summary view from cache only, spill, expiry.

Runs on DuckDB and PostgreSQL, with Redis and without."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mesdash.core.batch import QuerySpool
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.redis_client import get_redis
from mesdash.core.resilience.errors import CacheExpired, ValidationFailed
from mesdash.reports.reject.schemas import RejectQuery
from mesdash.reports.reject.service import SCHEMA, SPOOL_NAMESPACE, build_dataset, query_id_for
from mesdash.reports.reject.views import ViewFilters, export_csv, pareto, rows_page, summary, trend
from test_batch_support import use_backend

START, END = date(2026, 4, 15), date(2026, 6, 30)  # 77 days: three chunks
NOW = datetime(2026, 6, 30, 12, 0)
RAW_SQL = """
SELECT r.CONTAINERID, r.LOSSREASONNAME, r.TXNDATE, r.HISTORYMAINLINEID, r.MOVEINQTY, r.DEFECTQTY,
       r.REJECTQTY, r.STANDBYQTY, r.QTYTOPROCESS, r.INPROCESSQTY, r.PROCESSEDQTY, r.PJ_WORKORDER,
       c.MFGORDERNAME, c.OBJECTTYPE, c.PRODUCTLINENAME, c.PJ_TYPE, r.EQUIPMENTNAME
FROM dwh.DW_MES_LOTREJECTHISTORY r LEFT JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = r.CONTAINERID
"""
SCHEMA_NAMES = list(SCHEMA.names)
EXCLUDED_SQL = "SELECT REASON_NAME FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE WHERE ENABLE_FLAG = 'Y'"


@pytest.fixture(params=["redis", "local"])
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[str]:
    gen = use_backend(monkeypatch, request.param, redis_url, tmp_path / "spool")
    next(gen)
    yield str(request.param)
    next(gen, None)


def expected_rows(wh: Warehouse, q: RejectQuery) -> list[dict[str, Any]]:
    """The report's rules written out in Python over raw rows (not the report's SQL)."""
    excluded = {row[0] for row in wh.read_sql_df(EXCLUDED_SQL).rows}
    lo = datetime.combine(q.start_date, datetime.min.time()) + timedelta(hours=7, minutes=30)
    hi = datetime.combine(q.end_date + timedelta(days=1), datetime.min.time()) + timedelta(
        hours=7, minutes=30
    )
    kept = []
    for row in wh.read_sql_df(RAW_SQL).to_dicts():
        name = row["LOSSREASONNAME"] or ""
        if not lo <= row["TXNDATE"] < hi:
            continue
        valid = len(name) > 3 and all("0" <= ch <= "9" for ch in name[:3]) and name[3] == "_"
        if not q.include_excluded_scrap and (not valid or name[:3] in excluded or name in excluded):
            continue
        if q.exclude_material_scrap and row["OBJECTTYPE"] == "MATERIAL":
            continue
        if q.exclude_pb_diode and (row["PRODUCTLINENAME"] or "").startswith("PB_"):
            continue
        if q.pj_types and row["PJ_TYPE"] not in q.pj_types:
            continue
        kept.append(row)
    return kept


def expected_summary(wh: Warehouse, q: RejectQuery) -> dict[str, Any]:
    kept = expected_rows(wh, q)
    qty = ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY")
    charged = sum(sum(float(r[c] or 0) for c in qty) for r in kept)
    defect = sum(float(r["DEFECTQTY"] or 0) for r in kept)
    movein = {r["HISTORYMAINLINEID"]: float(r["MOVEINQTY"] or 0) for r in kept}
    return {
        "rows": len(kept),
        "charged_off_qty": charged,
        "not_charged_off_qty": defect,
        "movein_qty": sum(movein.values()),
        "affected_lots": len({r["CONTAINERID"] for r in kept}),
        "affected_work_orders": len({r["PJ_WORKORDER"] or r["MFGORDERNAME"] for r in kept}),
        "events": len(movein),
    }


def test_request_parsing_is_strict() -> None:
    q = RejectQuery.model_validate(
        {"start_date": "2026-01-01", "end_date": "2026-03-01", "packages": ["SOT-23", " SMA ", "SOT-23", ""]}
    )
    assert q.packages == ("SOT-23", "SMA")
    assert (q.include_excluded_scrap, q.exclude_material_scrap, q.exclude_pb_diode) == (False, True, True)
    for text, value in (("YES", True), ("off", False), ("1", True), ("n", False), (True, True)):
        assert RejectQuery(start_date=START, end_date=END, exclude_pb_diode=text).exclude_pb_diode is value
    for bad in ("t", "1.0", "", "maybe", 2):
        with pytest.raises(ValidationError) as info:
            RejectQuery(start_date=START, end_date=END, include_excluded_scrap=bad)
        assert info.value.errors()[0]["loc"] == ("include_excluded_scrap",)
    with pytest.raises(ValidationError):
        RejectQuery(start_date=date(2025, 1, 1), end_date=date(2026, 1, 1))  # 366 days
    assert RejectQuery(start_date=date(2025, 1, 1), end_date=date(2025, 12, 31)).days == 365
    a = RejectQuery(start_date=START, end_date=END, pj_types=["B", "A"], reasons=["x", "y"])
    b = RejectQuery(start_date=START, end_date=END, pj_types=["A", "B", "A"], reasons=["y", "x"])
    assert query_id_for(a) == query_id_for(b) != query_id_for(RejectQuery(start_date=START, end_date=END))


@pytest.mark.parametrize(
    "flags",
    [{}, {"include_excluded_scrap": True, "exclude_material_scrap": False, "exclude_pb_diode": False}],
)
def test_batched_query_summary_matches_raw_rows(
    tiny_warehouse: Warehouse, backend: str, flags: dict[str, bool]
) -> None:
    wh = tiny_warehouse
    q = RejectQuery(start_date=START, end_date=END, **flags)
    info = build_dataset(q, wh, now=lambda: NOW)
    assert info.chunks == 3 and not info.spilled and info.quality["status"] == "complete"
    expected = expected_summary(wh, q)
    assert expected["rows"] > 100 and info.rows == expected["rows"]
    before = wh.stats.count
    got = summary(info.query_id)
    assert wh.stats.count == before  # the view never touches the warehouse
    s = got["summary"]
    for name in ("rows", "affected_lots", "affected_work_orders", "events"):
        assert s[name] == expected[name], name
    for name in ("charged_off_qty", "not_charged_off_qty", "movein_qty"):
        assert s[name] == pytest.approx(expected[name]), name
    assert s["total_qty"] == pytest.approx(expected["charged_off_qty"] + expected["not_charged_off_qty"])
    assert s["charged_off_share"] == pytest.approx(s["charged_off_qty"] / s["total_qty"])
    assert s["charged_off_rate"] == pytest.approx(s["charged_off_qty"] / s["movein_qty"])
    assert got["quality"]["status"] == "complete" and got["as_of"] == "2026-06-30T12:00:00"


def test_filters_spill_and_expiry(tiny_warehouse: Warehouse, backend: str) -> None:
    wh = tiny_warehouse
    q = RejectQuery(start_date=START, end_date=END, pj_types=["__none__"])
    empty = build_dataset(q, wh, now=lambda: NOW)
    assert empty.rows == 0 and summary(empty.query_id)["summary"]["rows"] == 0

    q = RejectQuery(start_date=START, end_date=END)
    qid = build_dataset(q, wh, now=lambda: NOW).query_id
    small = summary(qid)["summary"]
    small_views = (pareto(qid, "reason"), trend(qid, "week"), b"".join(export_csv(qid)))
    spool = QuerySpool()
    info = build_dataset(q, wh, now=lambda: NOW, max_total_rows=10, spool=spool)
    assert info.spilled and spool.path_for(SPOOL_NAMESPACE, info.query_id).exists()
    before = wh.stats.count
    assert summary(info.query_id)["summary"] == small  # same numbers from the Parquet file
    assert (pareto(qid, "reason"), trend(qid, "week"), b"".join(export_csv(qid))) == small_views
    assert wh.stats.count == before
    spool.drop(SPOOL_NAMESPACE, info.query_id)
    with pytest.raises(CacheExpired):
        summary(info.query_id)
    with pytest.raises(CacheExpired):
        summary("0123456789abcdef")
    if backend == "redis":
        assert get_redis() is not None


def charged(row: dict[str, Any]) -> float:
    return sum(
        float(row[c] or 0)
        for c in ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY")
    )


def grouped(rows: list[dict[str, Any]], column: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for row in rows:
        out[row[column] or "(none)"] += charged(row)
    return dict(out)


def test_views_from_the_cached_dataset(tiny_warehouse: Warehouse, backend: str) -> None:
    wh = tiny_warehouse
    q = RejectQuery(start_date=START, end_date=END)
    qid = build_dataset(q, wh, now=lambda: NOW).query_id
    kept = expected_rows(wh, q)
    before = wh.stats.count

    reasons = pareto(qid, "reason")
    expected = grouped(kept, "LOSSREASONNAME")
    assert {i["item"]: i["qty"] for i in reasons["items"]} == pytest.approx(expected)
    qtys = [i["qty"] for i in reasons["items"]]
    assert qtys == sorted(qtys, reverse=True) and reasons["items"][-1]["cumulative_pct"] == pytest.approx(100)
    cum = 0.0
    whole = sum(expected.values())
    for item in reasons["items"]:
        assert item["top80"] == (cum / whole < 0.8)
        cum += item["qty"]
        assert item["cumulative_pct"] == pytest.approx(100 * cum / whole)
    assert reasons["items"][0]["top80"] and not reasons["items"][-1]["top80"]

    top = reasons["items"][0]["item"]
    picked = ViewFilters.of({"reason": [top]})
    only = [r for r in kept if r["LOSSREASONNAME"] == top]
    assert summary(qid, picked)["summary"]["rows"] == len(only)
    assert pareto(qid, "reason", picked)["items"] == reasons["items"]  # own selection ignored
    packages = pareto(qid, "package", picked)
    assert {i["item"]: i["qty"] for i in packages["items"]} == pytest.approx(grouped(only, "PRODUCTLINENAME"))
    machines = pareto(qid, "machine", measure="defect")
    by_machine: dict[str, float] = defaultdict(float)
    for r in kept:
        by_machine[r["EQUIPMENTNAME"] or "(none)"] += float(r["DEFECTQTY"] or 0)
    assert {i["item"]: i["qty"] for i in machines["items"]} == pytest.approx(dict(by_machine))
    groups = pareto(qid, "workcenter_group")["items"]
    assert sum(i["qty"] for i in groups) == pytest.approx(whole) and len(groups) > 3

    days = trend(qid, "day")["points"]
    per_day: dict[str, float] = defaultdict(float)
    for r in kept:
        per_day[(r["TXNDATE"] - timedelta(hours=7, minutes=30)).date().isoformat()] += charged(r)
    assert {p["bucket"]: p["charged_off_qty"] for p in days} == pytest.approx(dict(per_day))
    weeks = trend(qid, "week")["points"]
    assert all(date.fromisoformat(p["bucket"]).weekday() == 0 for p in weeks)
    months = trend(qid, "month")["points"]
    assert [p["bucket"] for p in months] == ["2026-04-01", "2026-05-01", "2026-06-01"]
    total_movein = summary(qid)["summary"]["movein_qty"]
    assert sum(p["movein_qty"] for p in months) == pytest.approx(total_movein)

    page = rows_page(qid, page=2, page_size=50, sort="-TXNDATE")
    assert page["total"] == len(kept) and len(page["rows"]) == 50
    stamps = [r["TXNDATE"] for r in page["rows"]]
    assert stamps == sorted(stamps, reverse=True) and set(page["rows"][0]) == set(SCHEMA_NAMES)
    first = rows_page(qid, page=1, page_size=50, sort="-TXNDATE")["rows"]
    assert first[-1]["TXNDATE"] >= stamps[0]
    assert rows_page(qid, page=1000, page_size=50)["rows"] == []
    with pytest.raises(ValidationFailed):
        rows_page(qid, sort="TXNDATE; DROP TABLE x")
    with pytest.raises(ValidationFailed):
        pareto(qid, "nope")
    with pytest.raises(ValidationFailed):
        ViewFilters.of({"colour": ["red"]})

    body = b"".join(export_csv(qid, batch_rows=100))
    assert body.startswith(b"\xef\xbb\xbf")
    records = list(csv.DictReader(io.StringIO(body[3:].decode("utf-8"))))
    assert len(records) == len(kept) and list(records[0]) == SCHEMA_NAMES
    assert sum(float(r["CHARGED_OFF_QTY"]) for r in records) == pytest.approx(sum(map(charged, kept)))
    assert wh.stats.count == before  # every view answered from the cached dataset
