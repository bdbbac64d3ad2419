"""The query tool page in a real browser: every tab runs its lookup against the tiny
warehouse (the equipment period also as a 202 job), renders rows and offers a CSV export."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

from mesdash.core.db.warehouse import Warehouse

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
READY = "#main[data-state=ready]"


def _run(page: Page, prefix: str) -> None:
    page.evaluate("document.getElementById('main').dataset.state = 'loading'")
    page.click(f"#{prefix}-run")
    page.wait_for_selector(READY, timeout=60_000)


def _rows(page: Page, prefix: str) -> int:
    return page.locator(f"#{prefix}-table tbody tr:not(:has(td.empty))").count()


def test_query_tool_tabs(page: Page, live_server: str, console_errors: list[str], tiny_duckdb_url: str) -> None:
    wh = Warehouse(tiny_duckdb_url)
    try:
        split_lot = wh.read_sql_df(
            "SELECT MIN(FROMCONTAINERNAME) AS N FROM dwh.DW_MES_HM_LOTMOVEOUT WHERE CDONAME = 'SplitLot'"
        ).rows[0][0]
        machine, jobs = wh.read_sql_df(
            "SELECT RESOURCEID, COUNT(*) AS N FROM dwh.DW_MES_JOB GROUP BY RESOURCEID ORDER BY COUNT(*) DESC, RESOURCEID "
            "FETCH FIRST 1 ROWS ONLY"
        ).rows[0]
    finally:
        wh.close()
    page.goto(f"{live_server}/query-tool")
    page.wait_for_selector("#main[data-state=idle], #main[data-state=error]", timeout=60_000)
    assert page.get_attribute("#main", "data-state") == "idle", (page.inner_text("#period-table"), console_errors)

    # equipment period: E10 hours of three machines, chart and table
    page.fill("#machine-search", "GDS")
    page.wait_for_function(
        "(labels => labels.length > 2 && labels.every(l => l.textContent.includes('GDS')))"
        "([...document.querySelectorAll('#machine-picker label')])"
    )
    boxes = page.locator("#machine-picker input[type=checkbox]")
    for i in range(3):
        boxes.nth(i).check()
    page.fill("#period-start", "2026-05-01")
    page.fill("#period-end", "2026-05-31")
    _run(page, "period")
    assert _rows(page, "period") == 3
    assert page.locator("#period-chart .main-svg").count() > 0
    assert "/api/query-tool/equipment-period/" in (page.get_attribute("#period-export", "href") or "")
    page.screenshot(path=str(SCREENSHOTS / "query-tool.png"), full_page=True)

    # a 91-day range of lots runs as a job, then shows its rows
    page.select_option("#period-type", "lots")
    page.fill("#period-start", "2026-04-01")
    page.fill("#period-end", "2026-06-30")
    _run(page, "period")
    assert _rows(page, "period") > 0 and "3 chunk(s)" in page.inner_text("#period-meta")
    lot = page.locator("#period-table tbody tr").first.locator("td").nth(1).inner_text().strip()

    # adjacent lots of that lot
    page.click("#tab-adjacent")
    page.fill("#adjacent-lot", lot)
    _run(page, "adjacent")
    assert page.locator("#adjacent-anchor option").count() > 0 and _rows(page, "adjacent") >= 1
    positions = page.locator("#adjacent-table tbody tr td:first-child").all_inner_texts()
    assert "0" in [p.strip() for p in positions]

    # lot → equipment
    page.click("#tab-lot-equipment")
    page.fill("#lot-equipment-values", lot)
    _run(page, "lot-equipment")
    assert _rows(page, "lot-equipment") > 0

    # split / merge history, full mode (a background job)
    page.click("#tab-split-merge")
    page.fill("#split-merge-lot", split_lot)
    page.select_option("#split-merge-mode", "full")
    _run(page, "split-merge")
    assert _rows(page, "split-merge") > 0
    csv_url = page.get_attribute("#split-merge-export", "href") or ""
    assert httpx.get(live_server + csv_url).content.startswith(b"\xef\xbb\xbf")

    # recent jobs of the busiest machine over two years
    page.click("#tab-recent-jobs")
    page.fill("#recent-jobs-machine", machine)
    page.fill("#recent-jobs-days", "730")
    _run(page, "recent-jobs")
    assert _rows(page, "recent-jobs") == min(5, jobs)
    assert console_errors == []
