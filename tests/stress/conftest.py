"""Warehouses for the load, chaos and soak suites: the ``demo`` fab generated with
``mesdash generate`` into a temporary DuckDB file and into a private PostgreSQL cluster
(which the chaos suite stops and starts), plus where the run summaries go."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from stack import END, generate_warehouse

from faults import PrivatePostgres

SCALE = os.environ.get("STRESS_SCALE", "demo")


@pytest.fixture(scope="session")
def demo_duckdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"duckdb:///{tmp_path_factory.mktemp('demo') / 'mes.duckdb'}"
    generate_warehouse(url, SCALE, END.isoformat())
    return url


@pytest.fixture(scope="session")
def demo_pg() -> Iterator[tuple[PrivatePostgres, str]]:
    pg = PrivatePostgres()
    try:
        pg.create()
        url = pg.create_database("mesdash_stress")
        generate_warehouse(url, SCALE, END.isoformat())
        yield pg, url
    finally:
        pg.drop()
