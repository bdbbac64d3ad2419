"""The hold-history page in a real browser: query, KPI cards, a trend-day click that
cross-filters reasons and list, CSV export whose rows match the list total."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

from browser.conftest import start_server, stop_server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
READY = "#main[data-state=ready]"


def _total(page: Page) -> int:
    return int(page.get_attribute("#hold-list .list-info", "data-total") or "0")


def test_hold_history_flow(page: Page, live_server: str, console_errors: list[str]) -> None:
    page.goto(live_server + "/hold-history")
    page.wait_for_selector("#today[data-state=ready]")
    page.fill("#start-date", "2026-05-01")
    page.fill("#end-date", "2026-06-30")
    page.check("input[name=record_type][value=on_hold]")
    page.click("#run")
    page.wait_for_selector(READY)

    body = httpx.post(live_server + "/api/hold-history/query", json={
        "start_date": "2026-05-01", "end_date": "2026-06-30", "record_type": ["new", "on_hold"]}).json()
    kpis = body["summary"]["kpis"]
    assert page.text_content("[data-kpi=new] .stat-value") == f"{kpis['new']:,}"
    assert _total(page) == kpis["selected_records"] > 0
    assert page.locator("#pareto-chart .bars .point").count() > 0

    # click the busiest trend day: pareto and list narrow to that factory day
    points = body["trend"]["series"]["all"]
    busiest = max(range(len(points)), key=lambda i: points[i]["new"])
    page.locator("#trend-chart .bars").first.locator(".point").nth(busiest).click(force=True)
    page.wait_for_selector("#day-chip:not([hidden])")
    page.wait_for_selector(READY)
    day = points[busiest]["day"]
    assert page.text_content("#day-value") == day
    expected = httpx.get(live_server + "/api/hold-history/list", params={
        "query_id": body["query_id"], "record_type": "new,on_hold", "day": day}).json()["total"]
    assert _total(page) == expected > 0

    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert len(text.strip().splitlines()) - 1 == expected

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.click("#clear-day")
    page.wait_for_selector(READY)
    page.screenshot(path=str(SCREENSHOTS / "hold-history.png"), full_page=True)
    assert console_errors == []


def test_long_range_runs_as_a_job_in_the_page(page: Page, tiny_duckdb_url: str, console_errors: list[str]) -> None:
    """Above REPORT_JOB_THRESHOLD_DAYS the query answers 202; the page follows the job and
    then shows the views of its dataset."""
    proc, base = start_server(tiny_duckdb_url, REPORT_JOB_THRESHOLD_DAYS="30")
    try:
        answers: list[int] = []
        page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/api/hold-history/query") else None)
        page.goto(base + "/hold-history")
        page.fill("#start-date", "2026-05-01")
        page.fill("#end-date", "2026-06-30")
        page.click("#run")
        page.wait_for_selector(READY)
        assert answers == [202]
        assert "2 chunk(s)" in (page.text_content("#meta") or "")
        assert _total(page) > 0
        assert console_errors == []
    finally:
        stop_server(proc)
