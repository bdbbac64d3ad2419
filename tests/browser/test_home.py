"""The home page in a real browser, and the shell's JS modules (api, table, charts)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, Route

from mesdash.core.db.schema import table_names

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SUMMARY = "**/api/warehouse/summary"
READY = "#main[data-state=ready]"
BANNER = "#degraded-banner"


def _problem(code: str = "DB_BUSY", retry_after: int = 1) -> dict[str, Any]:
    return {
        "status": 503,
        "headers": {"Retry-After": str(retry_after)},
        "content_type": "application/problem+json",
        "body": json.dumps({
            "type": f"/problems/{code.lower().replace('_', '-')}", "title": "Busy",
            "status": 503, "detail": "Too many slow queries running", "code": code,
            "retry_after_seconds": retry_after,
        }),
    }


def _row_texts(page: Page) -> dict[str, list[str]]:
    rows = page.locator("#summary-table tbody tr")
    out = {}
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        out[cells[0].splitlines()[0].strip()] = cells
    return out


def test_home_lists_every_table(page: Page, live_server: str, console_errors: list[str]) -> None:
    truth = httpx.get(live_server + "/api/warehouse/summary").json()
    page.goto(live_server + "/")
    page.wait_for_selector(READY)

    rows = _row_texts(page)
    assert list(rows) == table_names()
    for table in truth["tables"]:
        cells = rows[table["table"]]
        assert table["rows"] > 0
        assert cells[1] == f"{table['rows']:,}"
        if table["first"]:
            assert cells[2] == table["first"].replace("T", " ")[:16]
            assert cells[3] == table["last"].replace("T", " ")[:16]
        else:
            assert cells[2] == cells[3] == "—"

    assert page.text_content("#stat-dialect") == "DuckDB"
    assert page.text_content("#stat-tables") == str(len(table_names()))
    assert page.text_content("#stat-rows") == f"{sum(t['rows'] for t in truth['tables']):,}"
    assert page.get_attribute("#stat-as-of", "data-as-of") == truth["as_of"]  # cached read
    assert page.locator("#rows-chart .main-svg").count() >= 1
    assert page.locator("#rows-chart .bars .point").count() == len(table_names())
    assert page.is_hidden(BANNER)
    assert page.get_attribute("nav a.active", "href") == "/"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)
    assert console_errors == []


def test_table_sorts_by_column(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.wait_for_selector(READY)
    counts = {name: int(cells[1].replace(",", "")) for name, cells in _row_texts(page).items()}
    header = page.locator("#summary-table th", has_text="Rows")
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert next(iter(_row_texts(page))) == max(counts, key=lambda k: counts[k])
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert next(iter(_row_texts(page))) == min(counts, key=lambda k: counts[k])


def test_retry_after_503_shows_banner_then_succeeds(page: Page, live_server: str) -> None:
    calls: list[float] = []

    def handle(route: Route) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            route.fulfill(**_problem(retry_after=1))
        else:
            route.continue_()

    page.route(SUMMARY, handle)
    page.goto(live_server + "/")
    page.wait_for_selector(f"{BANNER}:not([hidden])")
    assert page.get_attribute(BANNER, "data-level") == "warn"
    assert "retrying" in (page.text_content(BANNER) or "")
    page.wait_for_selector(READY)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 1.0  # never earlier than Retry-After
    assert page.is_hidden(BANNER)  # the success cleared it
    assert page.locator("#summary-table tbody tr").count() == len(table_names())


def test_retries_are_bounded_and_never_a_tight_loop(page: Page, live_server: str) -> None:
    calls: list[float] = []

    def handle(route: Route) -> None:
        calls.append(time.monotonic())
        route.fulfill(**_problem(code="CIRCUIT_OPEN", retry_after=1))

    page.route(SUMMARY, handle)
    page.goto(live_server + "/")
    page.wait_for_selector("#main[data-state=error]")
    assert len(calls) == 3  # the first try and at most 2 retries
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(calls))
    assert page.get_attribute(BANNER, "data-level") == "error"
    assert "CIRCUIT_OPEN" in (page.text_content(BANNER) or "")
    assert "CIRCUIT_OPEN" in (page.text_content("#summary-table .error-box") or "")
    page.wait_for_timeout(2500)
    assert len(calls) == 3  # gave up: no further requests


def test_client_errors_are_not_retried(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.wait_for_selector(READY)
    result = page.evaluate("""async () => {
        const api = await import('/static/js/api.js');
        try { await api.apiGet('/api/no-such-thing'); return null; }
        catch (e) {
            return {name: e.name, status: e.status, code: e.code, retryAfter: e.retryAfter};
        }
    }""")
    assert result == {"name": "ApiError", "status": 404, "code": "NOT_FOUND", "retryAfter": None}
    assert page.is_hidden(BANNER)


def test_retry_delay_and_retry_after_parsing(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.wait_for_selector(READY)
    out = page.evaluate("""async () => {
        const api = await import('/static/js/api.js');
        const sample = (attempt, hint) =>
            Array.from({length: 200}, () => api.retryDelayMs(attempt, hint));
        const future = new Date(Date.now() + 30000).toUTCString();
        return {
            hinted: sample(0, 3), backoff0: sample(0, null), backoff2: sample(2, 0.1),
            seconds: api.parseRetryAfter('7'), date: api.parseRetryAfter(future),
            junk: api.parseRetryAfter('soon'), empty: api.parseRetryAfter(null),
        };
    }""")
    assert min(out["hinted"]) >= 3000 and max(out["hinted"]) <= 3750
    assert len(set(out["hinted"])) > 10  # jittered
    assert min(out["backoff0"]) >= 500
    assert min(out["backoff2"]) >= 2000  # exponential, not the small hint
    assert out["seconds"] == 7
    assert 25 <= out["date"] <= 30
    assert out["junk"] is None and out["empty"] is None


def test_stream_ndjson_reads_objects_as_they_come(page: Page, live_server: str) -> None:
    lines = [{"type": "meta", "n": 0}] + [{"type": "records", "batch": i} for i in range(50)]
    body = "\n".join(json.dumps(x) for x in lines)  # no trailing newline on the last line
    page.route("**/stream-under-test", lambda route: route.fulfill(
        status=200, content_type="application/x-ndjson", body=body))
    page.goto(live_server + "/")
    page.wait_for_selector(READY)
    out = page.evaluate("""async () => {
        const api = await import('/static/js/api.js');
        const seen = [];
        const n = await api.streamNdjson('/stream-under-test', (o) => seen.push(o));
        return {n, seen};
    }""")
    assert out["n"] == len(lines)
    assert out["seen"] == lines


def test_table_pages_and_escapes(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.wait_for_selector(READY)
    out = page.evaluate("""async () => {
        const { createTable } = await import('/static/js/table.js');
        const host = document.createElement('div');
        document.body.append(host);
        const rows = Array.from({length: 60}, (_, i) => ({id: i, name: `<b>lot ${i}</b>`}));
        const t = createTable(host, {columns: [{key: 'id', label: 'Id', numeric: true},
                                               {key: 'name', label: 'Name'}], pageSize: 25});
        t.setRows(rows);
        const info = () => host.querySelector('.dt-pager span').textContent;
        const first = [info(), host.querySelectorAll('tbody tr').length];
        host.querySelectorAll('.dt-pager button')[1].click();
        const second = [info(), host.querySelector('tbody td').textContent];
        host.querySelectorAll('.dt-pager button')[1].click();
        const third = [info(), host.querySelectorAll('tbody tr').length];
        return {first, second, third, bold: host.querySelectorAll('tbody b').length,
                text: host.querySelector('tbody td + td').textContent};
    }""")
    assert out["first"] == ["1–25 of 60", 25]
    assert out["second"] == ["26–50 of 60", "25"]
    assert out["third"] == ["51–60 of 60", 10]
    assert out["bold"] == 0  # data is text, never markup
    assert out["text"] == "<b>lot 50</b>"


def test_charts_draw_pareto_and_trend(
    page: Page, live_server: str, console_errors: list[str]
) -> None:
    page.goto(live_server + "/")
    page.wait_for_selector(READY)
    out = page.evaluate("""async () => {
        const charts = await import('/static/js/charts.js');
        const make = () => { const d = document.createElement('div');
                             d.style.width = '600px'; d.style.height = '300px';
                             document.body.append(d); return d; };
        const p = make(), l = make();
        await charts.paretoChart(p, {labels: ['a', 'b', 'c'], values: [1, 6, 3]});
        await charts.lineTrend(l, {series: [{name: 'OU%', x: ['2026-01-01', '2026-01-02'],
                                             y: [50, 60]}], percent: true});
        return {px: p.data[0].x, cum: p.data[1].y, lines: l.data.length,
                svg: !!l.querySelector('.main-svg')};
    }""")
    assert out["px"] == ["b", "c", "a"]
    assert [round(v) for v in out["cum"]] == [60, 90, 100]
    assert out["lines"] == 1 and out["svg"]
    assert console_errors == []
