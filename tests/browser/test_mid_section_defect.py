"""The mid-section defect page in a real browser, on tiny and on the demo warehouse: an
analysis over the planted machine excursion's detection window ranks that machine first;
charts and detail render; opening the suspect shows its defect rate over time against the
rest of the cohort and the machine's recent equipment jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from browser.conftest import start_server, stop_server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _planted_machine(url: str) -> tuple[dict[str, Any], date, date]:
    """The manifest's machine excursion and the days its lots reach final test."""
    manifest = json.loads(Path(url.removeprefix("duckdb:///") + ".manifest.json").read_text("utf-8"))
    planted = next(e for e in manifest["excursions"] if e["kind"] == "machine")
    start = datetime.fromisoformat(planted["window"]["start"]).date() + timedelta(days=2)
    end = datetime.fromisoformat(planted["window"]["end"]).date() + timedelta(days=6)
    return planted, start, end


def test_analysis_ranks_the_planted_machine_first(
    page: Page, live_server: str, console_errors: list[str], tiny_duckdb_url: str
) -> None:
    planted, start, end = _planted_machine(tiny_duckdb_url)
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


@pytest.fixture(scope="module")
def demo_server(demo_duckdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over the demo warehouse (~34k lots); demo's seconds-long queries get the
    default 30 s wait for the testing profile's one slow-query slot."""
    spool = tmp_path_factory.mktemp("msd-demo-spool")
    proc, base = start_server(
        demo_duckdb_url, DB_SLOW_SEMAPHORE_WAIT_SECONDS="30", MESDASH_SPOOL_DIR=str(spool)
    )
    yield base
    stop_server(proc)


@pytest.mark.timeout(300)
def test_demo_analysis_opens_the_planted_machine(
    page: Page, demo_server: str, console_errors: list[str], demo_duckdb_url: str
) -> None:
    """On demo: the page's analysis ranks the manifest's machine first (as the API does);
    clicking it draws its daily defect rate and the rest of the cohort's (the drill-down's
    points) and lists its recent equipment jobs (the query tool's, newest first)."""
    planted, start, end = _planted_machine(demo_duckdb_url)
    page.goto(f"{demo_server}/mid-section-defect")
    page.wait_for_selector("#main[data-state=idle]")
    page.fill("#f-start", start.isoformat())
    page.fill("#f-end", end.isoformat())
    page.click("#run")
    page.wait_for_selector("#main[data-state=ready], #main[data-state=error]", timeout=120_000)
    assert page.locator("#main").get_attribute("data-state") == "ready", page.locator(
        ".banner"
    ).all_inner_texts()

    api = httpx.get(
        f"{demo_server}/api/mid-section-defect/analysis",
        params={"start_date": start.isoformat(), "end_date": end.isoformat()},
        timeout=60,
    )
    assert api.status_code == 200, api.text  # the page's analysis, from the cache
    result = api.json()
    top = result["suspects"][0]
    assert (top["dimension"], top["id"], top["name"]) == (
        "machine",
        planted["resource_id"],
        planted["resource_name"],
    )
    first = page.locator("#suspects-table tbody tr").first.locator("td").all_inner_texts()
    assert first[1] == "machine" and first[2] == planted["resource_name"]
    assert int(page.locator("#k-lots").inner_text().replace(",", "")) == result["kpi"]["lots"] > 2000

    page.locator("#suspects-table tbody tr").first.locator("button.suspect-open").click()
    page.wait_for_selector("#suspect-card[data-state=ready]", timeout=60_000)
    assert planted["resource_name"] in page.locator("#suspect-title").inner_text()

    drill = httpx.get(
        f"{demo_server}/api/mid-section-defect/analysis/suspect",
        params={"query_id": result["query_id"], "rank": 1},
        timeout=60,
    ).json()
    assert sum(d["lots"] for d in drill["daily"]) == top["lot_count"]
    traces = page.evaluate(
        "() => document.getElementById('c-suspect').data.map((t) => ({name: t.name, x: t.x, y: t.y}))"
    )
    assert [len(t["x"]) for t in traces] == [len(drill["daily"]), len(drill["rest_daily"])]
    assert traces[0]["x"] == [d["day"] for d in drill["daily"]]
    assert traces[0]["y"] == pytest.approx([100 * (d["defect_rate"] or 0) for d in drill["daily"]])
    assert max(traces[0]["y"]) > max(traces[1]["y"])  # the planted machine's lots fail more

    jobs = httpx.get(
        f"{demo_server}/api/query-tool/equipment-recent-jobs/{planted['resource_id']}",
        params={"days": 90, "limit": 10, "as_of": end.isoformat()},
        timeout=60,
    ).json()["data"]
    assert jobs, "the planted machine has jobs in the 90 days up to the analysis end"
    assert page.locator("#jobs-title").is_visible()
    rows = page.locator("#suspect-jobs tbody tr")
    assert rows.count() == len(jobs)
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == [
        j["JOBORDERNAME"] for j in jobs
    ]
    assert console_errors == []
