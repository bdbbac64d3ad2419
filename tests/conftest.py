"""Shared fixtures: the testing profile, real PostgreSQL and Redis, warehouses per dialect.

PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) are the machine's shared
servers; each test area gets its own PostgreSQL database and Redis namespace so areas never
see each other's rows or keys. Fault tests start private instances (see tests/faults.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

os.environ["MESDASH_ENV"] = "testing"
for _key in list(os.environ):
    if (
        _key.startswith(("MESDASH_", "DB_", "CIRCUIT_", "EVENT_", "TRACE_", "BATCH_"))
        and _key != "MESDASH_ENV"
    ):
        del os.environ[_key]

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TINY_SEED = 7
TINY_END = date(2026, 6, 30)
DIALECTS = ["duckdb", "postgresql"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-stress", action="store_true", help="run stress, soak and load tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-stress"):
        return
    skip = pytest.mark.skip(reason="stress test: pass --run-stress")
    for item in items:
        if "stress" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from mesdash.core.cache import reset_l1
    from mesdash.settings import reset_settings

    reset_settings()
    reset_l1()  # the process L1 is shared: no test sees another's entries
    yield
    reset_settings()


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def create_pg_database(name: str) -> str:
    """Drop and create database ``name`` on the shared server; returns its URL."""
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


def drop_pg_database(name: str) -> None:
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _worker_suffix() -> str:
    """Unique per test process: runs of several developers or sessions on one machine share
    the PostgreSQL server, never a database."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}_{os.getpid()}"


@pytest.fixture(scope="session")
def tiny_duckdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.synth import generate

    path = Path(tmp_path_factory.mktemp("tiny")) / "mes.duckdb"
    url = f"duckdb:///{path}"
    wh = Warehouse(url, read_only=False)
    try:
        generate(wh, scale="tiny", seed=TINY_SEED, end_date=TINY_END)
    finally:
        wh.close()
    return url


@pytest.fixture(scope="session", autouse=True)
def short_soak(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The default suite's soak (tests/test_soak_short.py), started with the session when
    the session runs that test, so that it goes on beside the other tests (niced, in its own
    process: ``tests/stress/soak.py``, ``BackgroundSoak``); the test waits for its result."""
    if not any(item.nodeid.endswith("test_soak_short.py::test_soak_short") for item in request.session.items):
        yield None
        return
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "stress"))
    from soak import BackgroundSoak

    url: str = request.getfixturevalue("tiny_duckdb_url")
    soak = BackgroundSoak(Path(url.removeprefix("duckdb:///")), tmp_path_factory.mktemp("soak-short"))
    yield soak
    soak.stop()


@pytest.fixture(scope="session")
def tiny_pg_url() -> Iterator[str]:
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.synth import generate

    name = f"mesdash_tiny_{_worker_suffix()}"
    url = create_pg_database(name)
    wh = Warehouse(url, read_only=False)
    try:
        generate(wh, scale="tiny", seed=TINY_SEED, end_date=TINY_END)
    finally:
        wh.close()
    yield url
    drop_pg_database(name)


@pytest.fixture(scope="session")
def demo_duckdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo warehouse (365 days ending TINY_END, ~34k lots; 10–25 s to generate), DuckDB
    only; its manifest (planted excursions) lies next to the file."""
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.synth import generate

    path = Path(tmp_path_factory.mktemp("demo")) / "mes.duckdb"
    url = f"duckdb:///{path}"
    wh = Warehouse(url, read_only=False)
    try:
        generate(wh, scale="demo", seed=1, end_date=TINY_END)
    finally:
        wh.close()
    return url


@pytest.fixture(params=DIALECTS)
def tiny_url(request: pytest.FixtureRequest) -> str:
    """The tiny generated warehouse, once per dialect."""
    return str(request.getfixturevalue(f"tiny_{'pg' if request.param == 'postgresql' else 'duckdb'}_url"))


@pytest.fixture
def tiny_warehouse(tiny_url: str) -> Iterator[object]:
    from mesdash.core.db.warehouse import Warehouse

    wh = Warehouse(tiny_url)
    yield wh
    wh.close()


@pytest.fixture(params=DIALECTS)
def empty_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A writable warehouse with empty tables, fresh for each test."""
    from mesdash.core.db.schema import init_db
    from mesdash.core.db.warehouse import Warehouse

    name = f"mesdash_empty_{_worker_suffix()}"
    url = f"duckdb:///{tmp_path / 'empty.duckdb'}" if request.param == "duckdb" else create_pg_database(name)
    wh = Warehouse(url, read_only=False)
    with wh.write_connection() as conn:
        init_db(conn)
    yield wh
    wh.close()
    if request.param == "postgresql":
        drop_pg_database(name)


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def redis_namespace(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[str]:
    """Point the process at the shared Redis under a namespace of its own; keys removed after."""
    import uuid

    import redis

    from mesdash.core.cache import reset_l1, reset_l2_backoff
    from mesdash.core.redis_client import reset_redis
    from mesdash.settings import reset_settings

    namespace = f"mesdash-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MESDASH_REDIS_URL", redis_url)
    monkeypatch.setenv("MESDASH_CACHE_NAMESPACE", namespace)
    reset_settings()
    reset_redis()
    reset_l1()
    reset_l2_backoff()
    yield namespace
    client = redis.Redis.from_url(redis_url)
    for k in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(k)
    client.close()
    reset_redis()
    reset_l1()
    reset_l2_backoff()
