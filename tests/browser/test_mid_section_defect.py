"""The mid-section defect page in a real browser: an analysis over the planted machine
excursion's detection window ranks that machine first; charts and detail render."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_analysis_ranks_the_planted_machine_first(
    page: Page, live_server: str, console_errors: list[str], tiny_duckdb_url: str
) -> None:
    manifest = json.loads(
        Path(tiny_duckdb_url.removeprefix("duckdb:///") + ".manifest.json").read_text("utf-8")
    )
    planted = next(e for e in manifest["excursions"] if e["kind"] == "machine")
    start = datetime.fromisoformat(planted["window"]["start"]).date() + timedelta(days=2)
    end = datetime.fromisoformat(planted["window"]["end"]).date() + timedelta(days=6)
    page.goto(f"{live_server}/mid-section-defect")
    page.wait_for_selector("#main[data-state=idle]")
    page.fill("#f-start", start.isoformat())
    page.fill("#f-end", end.isoformat())
    page.click("#run")
    page.wait_for_selector("#main[data-state=ready]", timeout=60_000)

    first = page.locator("#suspects-table tbody tr").first.locator("td").all_inner_texts()
    assert first[1] == "machine" and first[2] == planted["resource_name"]
    assert page.locator("#c-by_machine .main-svg").count() > 0
    assert page.locator("#detail-table tbody tr").count() > 0
    assert int(page.locator("#k-lots").inner_text().replace(",", "")) > 0
    assert page.locator("#export").get_attribute("href")
    page.locator("#suspects-table tbody tr").first.locator("button.suspect-open").click()
    page.wait_for_selector("#suspect-card[data-state=ready]", timeout=30_000)
    assert planted["resource_name"] in page.locator("#suspect-title").inner_text()
    assert page.locator("#c-suspect .main-svg").count() > 0
    assert page.locator("#jobs-title").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "mid-section-defect.png"), full_page=True)
    assert console_errors == []
