"""The equipment-jobs page in a real browser: machine search and pick, query, a bar click
that filters the job list by machine, a job's transactions, CSV export whose rows match the
list's job × transaction count."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
READY = "#main[data-state=ready]"


def _total(page: Page) -> int:
    return int(page.get_attribute("#job-list .list-info", "data-total") or "0")


def test_job_query_flow(page: Page, live_server: str, console_errors: list[str]) -> None:
    page.goto(live_server + "/job-query")
    page.wait_for_selector("#query-form[data-state=ready]")
    page.fill("#machine-search", "GWBA")
    page.wait_for_function("""() => { const boxes = [...document.querySelectorAll('#machine-picker input')];
        return boxes.length > 0 && boxes.every((b) => b.dataset.machine.includes('GWBA')); }""")
    boxes = page.locator("#machine-picker input")
    chosen = [boxes.nth(i).get_attribute("value") for i in range(min(3, boxes.count()))]
    for i in range(len(chosen)):
        boxes.nth(i).check()
    page.fill("#start-date", "2026-05-01")
    page.fill("#end-date", "2026-06-30")
    page.click("#run")
    page.wait_for_selector(READY)

    body = httpx.post(live_server + "/api/job-query/query", json={
        "start_date": "2026-05-01", "end_date": "2026-06-30", "machines": chosen}).json()
    assert _total(page) == body["jobs"]["total"] > 0
    assert page.text_content("[data-kpi=jobs] .stat-value") == f"{body['jobs']['total']:,}"

    # click the first machine bar: the list narrows to that machine
    bars = httpx.get(live_server + "/api/job-query/breakdown", params={"query_id": body["query_id"]}).json()["items"]
    page.locator("#machine-chart .bars .point").first.click(force=True)
    page.wait_for_selector("#machine-chip:not([hidden])")
    page.wait_for_selector(READY)
    machine = bars[0]["item"]
    assert page.text_content("#machine-value") == machine
    narrowed = httpx.get(live_server + "/api/job-query/jobs", params={
        "query_id": body["query_id"], "machines": machine}).json()
    assert _total(page) == narrowed["total"] == bars[0]["jobs"]

    page.locator("#job-list .job-link").first.click()
    page.wait_for_selector("#txn-table[data-rows]")
    job_id = narrowed["rows"][0]["JOBID"]
    assert job_id in (page.text_content("#txn-job") or "")

    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert len(text.strip().splitlines()) - 1 == narrowed["export_rows"]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "job-query.png"), full_page=True)
    assert console_errors == []
