"""The web shell: pages, static files, plotly.js, the warehouse summary, the error contract."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mesdash.core.db.schema import table_columns, table_names
from mesdash.core.db.warehouse import Warehouse
from mesdash.web.pages import NAV
from mesdash.web.summary import MAIN_TIMESTAMP, clear_summary_cache


def _reset() -> None:
    from mesdash.core.db import reset_warehouse
    from mesdash.settings import reset_settings

    clear_summary_cache()
    reset_settings()
    reset_warehouse()


@contextmanager
def _client(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[TestClient]:
    from mesdash.app import create_app

    monkeypatch.setenv("MESDASH_DATABASE_URL", url)
    _reset()
    try:
        with TestClient(create_app()) as client:
            yield client
    finally:
        _reset()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, tiny_url: str) -> Iterator[TestClient]:
    """The app over the tiny warehouse, once per dialect."""
    with _client(monkeypatch, tiny_url) as c:
        yield c


@pytest.fixture
def duck_client(monkeypatch: pytest.MonkeyPatch, tiny_duckdb_url: str) -> Iterator[TestClient]:
    """The app over the tiny DuckDB warehouse only (tests that do not touch SQL)."""
    with _client(monkeypatch, tiny_duckdb_url) as c:
        yield c


def _truth(url: str) -> dict[str, tuple[int, object, object]]:
    """Row count and min/max main timestamp per table, straight from the warehouse."""
    wh = Warehouse(url)
    try:
        out = {}
        for name in table_names():
            ts = MAIN_TIMESTAMP.get(name)
            span = f", MIN({ts}), MAX({ts})" if ts else ", NULL, NULL"
            row = wh.read_sql_df(f"SELECT COUNT(*){span} FROM dwh.{name}").rows[0]
            out[name] = (int(row[0]), row[1], row[2])
        return out
    finally:
        wh.close()


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


# --------------------------------------------------------------------------- pages ----
def test_home_page_has_the_navigation(duck_client: TestClient) -> None:
    response = duck_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for item in NAV:
        assert f'href="{item.href}"' in html
        assert f">{item.label}</a>" in html
    assert 'id="degraded-banner"' in html
    active = re.findall(r'<a href="([^"]*)"[^>]*class="active" aria-current="page"', html)
    assert active == ["/"]
    assert "/static/vendor/plotly.min.js?v=" in html
    assert 'type="module" src="/static/js/home.js' in html


def test_nav_covers_the_planned_pages() -> None:
    assert [item.href for item in NAV] == [
        "/", "/trace", "/reject-history", "/hold-history", "/resource-history",
        "/job-query", "/mid-section-defect", "/query-tool", "/admin",
    ]


@pytest.mark.parametrize("path", ["/static/js/api.js", "/static/js/table.js",
                                  "/static/js/charts.js", "/static/js/home.js"])
def test_es_modules_are_served_as_javascript(duck_client: TestClient, path: str) -> None:
    response = duck_client.get(path)
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert "export " in response.text or "import " in response.text


def test_stylesheet_is_served(duck_client: TestClient) -> None:
    response = duck_client.get("/static/css/shell.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".banner" in response.text


def test_plotly_is_served_from_the_installed_package(duck_client: TestClient) -> None:
    import plotly

    response = duck_client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age=31536000" in response.headers["cache-control"]
    assert len(response.content) > 1_000_000
    bundled = (plotly.__path__[0] + "/package_data/plotly.min.js")
    with open(bundled, "rb") as fh:
        assert response.content == fh.read()


# ------------------------------------------------------------------------- summary ----
def test_summary_counts_every_table(client: TestClient, tiny_url: str) -> None:
    response = client.get("/api/warehouse/summary")
    assert response.status_code == 200
    body = response.json()
    assert body["dialect"] == tiny_url.split(":", 1)[0].split("+", 1)[0]
    assert datetime.fromisoformat(body["as_of"]).tzinfo is not None
    tables = {t["table"]: t for t in body["tables"]}
    assert list(tables) == table_names()
    assert len(tables) == len(table_columns()) == 13
    truth = _truth(tiny_url)
    for name, (rows, first, last) in truth.items():
        assert rows > 0, name
        assert tables[name]["rows"] == rows, name
        assert tables[name]["first"] == _iso(first), name
        assert tables[name]["last"] == _iso(last), name
    # event tables carry a span, master data none
    assert tables["DW_MES_LOTWIPHISTORY"]["first"] < tables["DW_MES_LOTWIPHISTORY"]["last"]
    assert tables["DW_MES_CONTAINER"]["first"] is None


def test_summary_is_cached_in_process(client: TestClient) -> None:
    from mesdash.core.db import get_warehouse

    first = client.get("/api/warehouse/summary").json()
    stats = get_warehouse().stats
    before = stats.count
    for _ in range(5):
        again = client.get("/api/warehouse/summary").json()
        assert again == first  # same as_of: nothing re-read
    assert stats.count == before
    clear_summary_cache()
    fresh = client.get("/api/warehouse/summary").json()
    assert stats.count == before + 1  # one round trip for all tables
    assert datetime.fromisoformat(fresh["as_of"]) > datetime.fromisoformat(first["as_of"])
    assert fresh["tables"] == first["tables"]


def test_main_timestamps_are_real_columns() -> None:
    columns = table_columns()
    for table, column in MAIN_TIMESTAMP.items():
        assert column in columns[table], (table, column)


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql", "oracle"])
def test_summary_sql_is_one_statement_over_all_tables(dialect: str) -> None:
    from mesdash.core.db.sql_loader import SQLLoader
    from mesdash.web.summary import summary_sql

    sql = summary_sql(SQLLoader(dialect))
    assert sql.count("UNION ALL") == len(table_names()) - 1
    for name in table_names():
        assert f"FROM dwh.{name}\n" in sql + "\n"


def test_summary_sql_parses_as_oracle() -> None:
    import sqlglot

    from mesdash.core.db.sql_loader import SQLLoader
    from mesdash.web.summary import summary_sql

    text = summary_sql(SQLLoader("oracle"))
    parsed = sqlglot.parse(text, read="oracle")
    assert len(parsed) == 1
    assert "LIMIT" not in text.upper() and "::" not in text


def test_summary_of_a_missing_warehouse_is_a_503_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"duckdb:///{tmp_path}/absent/mes.duckdb"
    with _client(monkeypatch, url) as client:
        response = client.get("/api/warehouse/summary")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "DB_UNAVAILABLE"
        assert int(response.headers["retry-after"]) == body["retry_after_seconds"] >= 1
        assert "Traceback" not in response.text


# ------------------------------------------------------------------ error contract ----
def test_unknown_route_is_a_404_problem(duck_client: TestClient) -> None:
    for path in ("/no/such/page", "/api/no-such-thing", "/static/js/missing.js"):
        response = duck_client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "NOT_FOUND"
        assert body["status"] == 404
        assert body["type"] == "/problems/not-found"


def test_oversized_body_is_a_413_problem(duck_client: TestClient) -> None:
    from mesdash.settings import get_settings

    limit = get_settings().max_request_body_bytes
    response = duck_client.post(
        "/api/warehouse/summary", content=b"x" * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_wrong_method_is_a_405_problem(duck_client: TestClient) -> None:
    response = duck_client.delete("/api/warehouse/summary")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_summary_is_documented_with_problem_responses(duck_client: TestClient) -> None:
    spec = duck_client.get("/api/openapi.json").json()
    op = spec["paths"]["/api/warehouse/summary"]["get"]
    assert set(op["responses"]) >= {"200", "500", "503", "504"}
    for status in ("500", "503", "504"):
        assert "application/problem+json" in op["responses"][status]["content"]
    assert "/" not in spec["paths"]  # pages stay out of the API document


def test_operations_doc_lists_the_error_table_of_the_code() -> None:
    """docs/operations.md's error table is the code's table: same codes, statuses, Retry-After."""
    from mesdash.core.resilience.errors import ERROR_TABLE

    doc = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[1].isdigit():
            rows[cells[0].strip("`")] = (int(cells[1]), cells[2] == "RA")
    assert rows == {code: (spec.status, spec.retry) for code, spec in ERROR_TABLE.items()}
