"""The reject-history page in a real browser: a 365-day query that runs as a job (progress
bar), summary cards equal to the API, a pareto click that cross-filters every view, a
server-sorted table and a CSV export whose rows match the list total."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
READY = "#main[data-state=ready]"
YEAR = {"start_date": "2025-07-01", "end_date": "2026-06-30"}


def _total(page: Page) -> int:
    return int(page.get_attribute("#reject-list .list-info", "data-total") or "0")


def _query(base: str) -> dict[str, Any]:
    """The same request through the API (its job has run by now: the dataset is reused)."""
    resp = httpx.post(base + "/api/reject-history/query", json=YEAR, timeout=30)
    for _ in range(100):
        if resp.status_code == 200:
            return dict(resp.json())
        time.sleep(0.2)
        resp = httpx.post(base + "/api/reject-history/query", json=YEAR, timeout=30)
    raise AssertionError(resp.text)


def test_reject_history_flow(page: Page, live_server: str, console_errors: list[str]) -> None:
    page.goto(live_server + "/reject-history")
    page.fill("#start-date", YEAR["start_date"])
    page.fill("#end-date", YEAR["end_date"])
    page.click("#run")
    page.wait_for_selector("#progress-box:not([hidden])")  # 365 days > 60: a job
    page.wait_for_selector(READY, timeout=60_000)

    body = _query(live_server)
    qid = body["query_id"]
    assert qid in (page.text_content("#meta") or "")
    api = httpx.get(live_server + "/api/reject-history/summary", params={"query_id": qid}).json()["summary"]
    assert page.text_content("[data-kpi=charged-off] .stat-value") == f"{int(api['charged_off_qty']):,}"
    assert page.text_content("[data-kpi=lots] .stat-value") == f"{api['affected_lots']:,}"
    assert _total(page) == api["rows"] > 0
    for chart in ("#trend-chart", "#pareto-reason", "#pareto-package", "#pareto-third"):
        assert page.locator(f"{chart} .main-svg").count() > 0, chart

    # click the biggest reason: every other view narrows to it
    reasons = httpx.get(live_server + "/api/reject-history/reason-pareto", params={"query_id": qid}).json()
    top = reasons["items"][0]
    # near the bar's top: Plotly picks the closest point, and at the bar's middle that can be
    # the cumulative line's marker of the next reason when the first reason dominates
    bar = page.locator("#pareto-reason .bars .point").first
    box = bar.bounding_box()
    assert box is not None
    bar.click(force=True, position={"x": box["width"] / 2, "y": min(4.0, box["height"] / 2)})
    page.wait_for_selector("#selection:not([hidden])")
    page.wait_for_selector(READY)
    assert top["item"] in (page.text_content("#selection-text") or "")
    narrowed = httpx.get(
        live_server + "/api/reject-history/list", params={"query_id": qid, "reason": top["item"]}
    ).json()["total"]
    assert _total(page) == narrowed < api["rows"]
    assert page.text_content("[data-kpi=charged-off] .stat-value") == f"{int(top['qty']):,}"

    # sort by charged-off quantity on the server: descending after two clicks
    header = page.locator("#reject-list th button", has_text="Charged-off")
    header.click()
    page.wait_for_selector("#reject-list th[aria-sort=descending]")
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('#reject-list tbody tr td:nth-child(8)')]"
        ".map(td => Number(td.textContent.replace(/,/g, ''))); return c.length > 1 && c[0] >= c[c.length - 1]; }"
    )

    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert len(text.strip().splitlines()) - 1 == narrowed

    page.click("#clear-selection")
    page.wait_for_selector(READY)
    assert _total(page) == api["rows"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reject-history.png"), full_page=True)
    assert console_errors == []
