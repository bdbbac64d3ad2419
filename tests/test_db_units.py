"""Pure units of the warehouse layer: binds, SQL loader, query builder, Oracle engine options."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesdash.core.db import binds
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.settings import Settings


def test_binds_skip_literals_comments_and_casts() -> None:
    sql = "SELECT ':no', x::text, \"a:b\" FROM t -- :comment\nWHERE a = :a AND b LIKE 'PB\\_%' AND c = :a /* :c */"
    assert binds.bind_names(sql) == ["a"]
    pg, values = binds.render(sql, {"a": 1, "unused": 2}, "postgresql")
    assert "%(a)s" in pg and "'PB\\_%%'" in pg and "':no'" in pg and "x::text" in pg
    assert values == {"a": 1}
    duck, _ = binds.render(sql, {"a": 1}, "duckdb")
    assert duck.count("$a") == 2
    ora, _ = binds.render(sql, {"a": 1}, "oracle")
    assert ora == sql


def test_missing_bind_is_an_error() -> None:
    with pytest.raises(KeyError, match="b"):
        binds.render("SELECT :a, :b", {"a": 1}, "duckdb")


def test_in_condition_splits_above_batch_size() -> None:
    qb = QueryBuilder(in_batch_size=1000)
    qb.add_in_condition("CONTAINERID", [str(i) for i in range(2500)])
    sql = qb.condition_sql()
    assert sql.count("CONTAINERID IN (") == 3 and sql.count(" OR ") == 2
    assert len(qb.params) == 2500
    assert QueryBuilder().in_condition("X", []) == "1 = 0"
    assert QueryBuilder().condition_sql() == "1 = 1"


def test_query_builder_rejects_bad_column_names() -> None:
    with pytest.raises(ValueError):
        QueryBuilder().add_in_condition("X; DROP TABLE t", ["a"])


def test_sql_loader_prefers_dialect_file(tmp_path: Path) -> None:
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "q.sql").write_text("SELECT 1 FROM t WHERE {{ filters }}")
    (tmp_path / "area" / "q.oracle.sql").write_text("SELECT 1 FROM DUAL")
    assert SQLLoader("oracle", tmp_path).load("area/q") == "SELECT 1 FROM DUAL"
    assert SQLLoader("duckdb", tmp_path).load("area/q", filters="a = :a") == "SELECT 1 FROM t WHERE a = :a"
    with pytest.raises(KeyError):
        SQLLoader("duckdb", tmp_path).load("area/q")
    with pytest.raises(ValueError):
        SQLLoader("duckdb", tmp_path).load("../etc/passwd")


def test_oracle_engine_uses_configured_pool_thin_mode_and_call_timeout() -> None:
    import oracledb

    from mesdash.core.db.drivers import OracleDriver, make_driver

    settings = Settings(db_pool_size=7, db_max_overflow=3, db_pool_timeout=4.5, db_call_timeout_ms=12_000)
    driver = make_driver("oracle+oracledb://scott:tiger@db.example:1521/?service_name=DWH", settings, True)
    assert isinstance(driver, OracleDriver)
    pool = driver.engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout) == (7, 3, 4.5)  # type: ignore[attr-defined]
    assert driver.engine.dialect.driver == "oracledb"
    assert oracledb.is_thin_mode()

    class FakeConnection:
        call_timeout = 0

    conn = FakeConnection()
    driver._on_connect(conn, None)
    assert conn.call_timeout == 12_000
    status = driver.pool_status()
    assert status["size"] == 7 and status["max_overflow"] == 3


def test_postgres_engine_uses_configured_pool() -> None:
    from mesdash.core.db.drivers import make_driver

    settings = Settings(db_pool_size=4, db_max_overflow=2, db_pool_timeout=1.5, db_call_timeout_ms=9000)
    driver = make_driver("postgresql://postgres@127.0.0.1:5432/test", settings, True)
    pool = driver.engine.pool  # type: ignore[attr-defined]
    assert (pool.size(), pool._max_overflow, pool._timeout) == (4, 2, 1.5)
    opts = driver.engine_options()  # type: ignore[attr-defined]
    assert "statement_timeout=9000" in opts["connect_args"]["options"]
    assert opts["connect_args"]["connect_timeout"] == 5  # a 9 s call: the 5 s cap
    driver.dispose()


@pytest.mark.parametrize(("call_seconds", "connect"), [(0.3, 2), (1.0, 2), (2.5, 3), (4.0, 4), (55.0, 5), (300.0, 5)])
def test_postgres_connect_waits_no_longer_than_the_call(call_seconds: float, connect: int) -> None:
    """A connection is part of the call: a paused server holds a connect no longer than the
    call's timeout, in whole seconds at libpq's 2 s floor, and never more than 5 s."""
    from mesdash.core.db.drivers import pg_connect_timeout

    assert pg_connect_timeout(call_seconds) == connect


def test_profiles_set_semaphore_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {"production": 5, "staging": 5, "development": 3, "testing": 1}
    for profile, slots in expected.items():
        monkeypatch.setenv("MESDASH_ENV", profile)
        assert Settings().db_slow_max_concurrent == slots
    monkeypatch.setenv("DB_SLOW_MAX_CONCURRENT", "9")
    assert Settings().db_slow_max_concurrent == 9


def test_namespace_hides_password_and_differs_by_dialect() -> None:
    a = Settings(database_url="postgresql://u:secret@h/db").namespace
    b = Settings(database_url="postgresql://u:other@h/db").namespace
    c = Settings(database_url="duckdb:///x.duckdb").namespace
    assert a == b != c and "secret" not in a


def test_sizes_read_as_duckdb_reads_them() -> None:
    from mesdash.core.db.drivers import size_bytes

    assert size_bytes("512MiB") == 512 * 2**20
    assert size_bytes("1 GB") == 10**9
    assert size_bytes("1.5KiB") == 1536
    assert size_bytes("100B") == 100
    assert size_bytes("") == 0
    with pytest.raises(ValueError):
        size_bytes("80%")
    assert Settings().duckdb_reopen_above == "512MiB"
