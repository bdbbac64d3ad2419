"""The equipment-history page in a real browser: filters, KPI cards, a heatmap click that
cross-filters trend and detail by machine, CSV export whose rows match the detail total."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
READY = "#main[data-state=ready]"


def _total(page: Page) -> int:
    return int(page.get_attribute("#detail .list-info", "data-total") or "0")


def test_resource_history_flow(page: Page, live_server: str, console_errors: list[str]) -> None:
    page.goto(live_server + "/resource-history")
    page.wait_for_selector("#query-form[data-state=ready]")
    page.fill("#start-date", "2026-05-01")
    page.fill("#end-date", "2026-06-30")
    page.select_option("#granularity", "week")
    page.select_option("#is-production", "true")
    page.click("#run")
    page.wait_for_selector(READY)

    body = httpx.post(live_server + "/api/resource-history/query", json={
        "start_date": "2026-05-01", "end_date": "2026-06-30", "granularity": "week", "is_production": "true"}).json()
    summary = body["summary"]["summary"]
    assert page.text_content("[data-kpi=ou] .stat-value") == f"{summary['ou_pct']:.1f}%"
    qid = body["query_id"]
    heat = httpx.get(live_server + "/api/resource-history/heatmap", params={"query_id": qid, "granularity": "week"}).json()
    assert _total(page) > 0

    # click the top-left heatmap cell: its machine filters the other views
    page.locator("#heatmap").scroll_into_view_if_needed()
    box = page.locator("#heatmap .nsewdrag").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / len(heat["periods"]) / 2,
                     box["y"] + box["height"] / len(heat["machines"]) / 2)
    page.wait_for_selector("#machine-chip:not([hidden])")
    page.wait_for_selector(READY)
    machine = heat["machines"][0]
    assert page.text_content("#machine-value") == machine
    expected = httpx.get(live_server + "/api/resource-history/detail", params={
        "query_id": qid, "granularity": "week", "machines": machine}).json()["total"]
    assert _total(page) == expected > 0

    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert len(text.strip().splitlines()) - 1 == expected

    page.click("#clear-machine")
    page.wait_for_selector(READY)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "resource-history.png"), full_page=True)
    assert console_errors == []
