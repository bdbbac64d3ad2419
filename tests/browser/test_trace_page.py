"""The lot trace page in a real browser: resolve → genealogy graph → events streamed from a
trace job (the sync limit is set low so the page takes the job + NDJSON path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from browser.conftest import start_server, stop_server
from mesdash.core.db.warehouse import Warehouse

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def trace_site(tiny_duckdb_url: str, tmp_path: Path) -> Iterator[str]:
    proc, base = start_server(
        tiny_duckdb_url, TRACE_SYNC_CID_LIMIT="3", TRACE_JOB_ID_BATCH_SIZE="4",
        TRACE_STREAM_BATCH_SIZE="25", MESDASH_SPOOL_DIR=str(tmp_path / "spool"),
    )
    yield base
    stop_server(proc)


def _lots_with_rejects(url: str, n: int) -> list[str]:
    wh = Warehouse(url)
    try:
        rows = wh.read_sql_df(
            "SELECT c.CONTAINERNAME FROM dwh.DW_MES_CONTAINER c WHERE c.OBJECTTYPE = 'LOT' "
            "AND c.SPLITFROMID IS NOT NULL AND EXISTS (SELECT 1 FROM dwh.DW_MES_LOTREJECTHISTORY r "
            "WHERE r.CONTAINERID = c.CONTAINERID) ORDER BY c.CONTAINERNAME FETCH FIRST :n ROWS ONLY",
            {"n": n},
        ).rows
    finally:
        wh.close()
    return [str(r[0]) for r in rows]


def test_trace_page_streams_a_job_into_tabs(
    page: Page, trace_site: str, tiny_duckdb_url: str, console_errors: list[str]
) -> None:
    names = _lots_with_rejects(tiny_duckdb_url, 5)
    page.goto(trace_site + "/trace")
    page.fill("#trace-values", "\n".join([*names, "NO-SUCH-LOT"]))
    page.select_option("#lineage", "both")
    page.click("#run")
    page.wait_for_selector("#main[data-state=ready]", timeout=60_000)

    assert "NO-SUCH-LOT" in page.inner_text("#not-found")
    assert page.locator("#resolved-table tbody tr").count() == len(names)
    assert page.locator("#graph .scatterlayer .point").count() > len(names)  # ancestors too
    assert "Trace job trace-" in page.inner_text("#meta")  # the job + stream path
    assert page.get_attribute("#progress-bar", "value") == "100"

    counts = {
        tab.get_attribute("data-domain"): int(tab.locator(".count").inner_text().replace(",", ""))
        for tab in page.locator("#tabs .tab").all()
    }
    assert set(counts) == {"history", "rejects", "holds"}
    assert counts["history"] > 0 and counts["rejects"] > 0
    page.click('#tabs .tab[data-domain="rejects"]')
    assert page.locator("#tab-panel tbody tr").count() > 0

    box = page.locator("#graph .scatterlayer .point").first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # focus a node
    page.wait_for_selector("#focus-chip:not([hidden])")
    page.click("#clear-focus")
    page.click('#tabs .tab[data-domain="history"]')

    status = httpx.get(trace_site + "/api/jobs/" + page.inner_text("#meta").split()[2].rstrip(":")).json()
    assert status["status"] == "finished"
    assert status["result"]["rows"]["history"] == counts["history"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "trace.png"), full_page=True)
    assert console_errors == []
