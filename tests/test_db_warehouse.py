"""The warehouse layer on DuckDB and the real PostgreSQL: timeouts, streaming, IN batching,
injection, column case and value conversion."""

from __future__ import annotations

import gc
import os
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from mesdash.core.db.query_builder import QueryBuilder, like_escape
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import QueryTimeout, WarehouseError
from mesdash.core.resilience.problem import jsonable_bytes
from mesdash.settings import Settings

N_LOTS = 2500


def _seed(wh: Warehouse) -> list[str]:
    ids = [f"{i:016x}" for i in range(1, N_LOTS + 1)]
    with wh.write_connection() as conn:
        cur = conn.cursor()
        rows = [
            (cid, f"GA2401{i:04d}-A00-001", f"GA2401{i:04d}", "LOT", i * 1.5) for i, cid in enumerate(ids)
        ]
        if wh.dialect == "duckdb":
            import pyarrow as pa

            batch = pa.table(
                {
                    name: [r[i] for r in rows]
                    for i, name in enumerate(
                        ["CONTAINERID", "CONTAINERNAME", "MFGORDERNAME", "OBJECTTYPE", "QTY"]
                    )
                }
            )
            cur.register("seed_rows", batch)
            cur.execute(
                "INSERT INTO dwh.DW_MES_CONTAINER (CONTAINERID, CONTAINERNAME, MFGORDERNAME, OBJECTTYPE, QTY) SELECT * FROM seed_rows"
            )
            cur.execute(
                "INSERT INTO dwh.DW_MES_RESOURCESTATUS_SHIFT (HISTORYID, TXNDATE, OLDSTATUSNAME, HOURS) VALUES ('a', TIMESTAMP '2026-01-01 07:30:00', 'PRD', 1.25)"
            )
        else:
            cur.executemany(
                "INSERT INTO dwh.DW_MES_CONTAINER (CONTAINERID, CONTAINERNAME, MFGORDERNAME, OBJECTTYPE, QTY) VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
            cur.execute(
                "INSERT INTO dwh.DW_MES_RESOURCESTATUS_SHIFT (HISTORYID, TXNDATE, OLDSTATUSNAME, HOURS) VALUES ('a', TIMESTAMP '2026-01-01 07:30:00', 'PRD', 1.25)"
            )
        cur.close()
    return ids


def _long_query(dialect: str) -> str:
    if dialect == "postgresql":
        return "SELECT pg_sleep(30) AS slept"
    return "SELECT SUM(a.range * b.range) AS s FROM range(200000000) a, range(1000) b"


def _pg_activity(wh: Warehouse, pattern: str) -> int:
    result = wh.read_sql_df(
        "SELECT COUNT(*) AS N FROM pg_stat_activity WHERE query LIKE :p AND pid <> pg_backend_pid() AND state = 'active'",
        {"p": pattern},
    )
    return int(result.rows[0][0])


def _pg_connections(wh: Warehouse) -> int:
    return int(
        wh.read_sql_df(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).rows[0][0]
    )


def test_columns_upper_case_and_values_json_safe(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    _seed(wh)
    res = wh.read_sql_df(
        "SELECT containerid, qty, 'x' AS lower_alias FROM dwh.DW_MES_CONTAINER WHERE containerid = :cid",
        {"cid": f"{1:016x}"},
    )
    assert res.columns == ["CONTAINERID", "QTY", "LOWER_ALIAS"]
    assert res.rows == [(f"{1:016x}", 0.0, "x")]
    hours = wh.read_sql_df_slow("SELECT HOURS, TXNDATE FROM dwh.DW_MES_RESOURCESTATUS_SHIFT")
    assert hours.rows == [(1.25, datetime(2026, 1, 1, 7, 30))]
    assert isinstance(hours.rows[0][0], float)  # DECIMAL(12,6) arrives as a number
    payload = orjson.loads(jsonable_bytes({"rows": hours.to_dicts(), "nan": float("nan")}))
    assert payload == {"rows": [{"HOURS": 1.25, "TXNDATE": "2026-01-01T07:30:00"}], "nan": None}


def test_in_batching_equals_one_list(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    ids = _seed(wh)
    wanted = [*ids[::2], "ffffffffffffffff"]  # 1251 ids, one unknown
    batched = QueryBuilder(in_batch_size=1000).add_in_condition("CONTAINERID", wanted)
    assert batched.condition_sql().count(" IN (") == 2
    single = QueryBuilder(in_batch_size=100_000).add_in_condition("CONTAINERID", wanted)
    sql = "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE {filters} ORDER BY CONTAINERID"
    a = wh.read_sql_df_slow(sql.format(filters=batched.condition_sql()), batched.params)
    b = wh.read_sql_df_slow(sql.format(filters=single.condition_sql()), single.params)
    assert a.rows == b.rows
    assert [r[0] for r in a.rows] == sorted(ids[::2])


@pytest.mark.parametrize(
    "evil",
    [
        "x' OR '1'='1",
        "'); DROP TABLE dwh.DW_MES_CONTAINER; --",
        "0000000000000001' --",
        "%",
    ],
)
def test_injection_through_values_does_nothing(empty_warehouse: Warehouse, evil: str) -> None:
    wh = empty_warehouse
    _seed(wh)
    qb = QueryBuilder().add_in_condition("CONTAINERID", [evil])
    qb.add_or_like_conditions("CONTAINERNAME", [like_escape(evil) + "%"])
    rows = wh.read_sql_df(
        f"SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE {qb.condition_sql()}", qb.params
    ).rows
    assert rows == []
    assert wh.read_sql_df("SELECT COUNT(*) FROM dwh.DW_MES_CONTAINER").rows[0][0] == N_LOTS


def test_like_escape_matches_literal_underscore(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    _seed(wh)
    qb = QueryBuilder().add_or_like_conditions("CONTAINERNAME", [like_escape("GA2401000") + "%"])
    rows = wh.read_sql_df(
        f"SELECT COUNT(*) FROM dwh.DW_MES_CONTAINER WHERE {qb.condition_sql()}", qb.params
    ).rows
    assert rows[0][0] == 10  # GA24010000 … GA24010009


def test_timeout_cancels_the_query_in_the_database(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    start = time.monotonic()
    with pytest.raises(QueryTimeout):
        wh.read_sql_df_slow(_long_query(wh.dialect), timeout_seconds=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 5, f"timeout took {elapsed:.1f}s"
    assert wh.bulkhead.active == 0
    if wh.dialect == "postgresql":
        time.sleep(0.2)
        assert _pg_activity(wh, "SELECT pg_sleep(30)%") == 0
    # the connection layer stays usable after a timeout
    assert wh.read_sql_df("SELECT 1 AS ONE").rows == [(1,)]


def test_pooled_path_timeout(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    with pytest.raises(QueryTimeout):
        wh.read_sql_df(_long_query(wh.dialect), timeout_seconds=1.0)
    if wh.dialect == "postgresql":
        time.sleep(0.2)
        assert _pg_activity(wh, "SELECT pg_sleep(30)%") == 0
        assert wh.pool_status()["checked_out"] == 0


def test_iterator_streams_batches_and_releases_when_abandoned(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    _seed(wh)
    sql = "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER ORDER BY CONTAINERID"
    batches = list(wh.read_sql_df_slow_iter(sql, batch_size=1000))
    assert [len(rows) for _, rows in batches] == [1000, 1000, 500]
    assert batches[0][0] == ["CONTAINERID"]

    baseline = _pg_connections(wh) if wh.dialect == "postgresql" else 0
    it = wh.read_sql_df_slow_iter(sql, batch_size=100)
    next(it)
    assert wh.bulkhead.active == 1
    if wh.dialect == "postgresql":
        assert _pg_connections(wh) == baseline + 1
    del it
    gc.collect()
    assert wh.bulkhead.active == 0
    if wh.dialect == "postgresql":
        time.sleep(0.2)
        assert _pg_connections(wh) == baseline


def test_sql_error_is_typed_and_hides_sql(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    with pytest.raises(WarehouseError) as info:
        wh.read_sql_df_slow(
            "SELECT NO_SUCH_COLUMN FROM dwh.DW_MES_CONTAINER WHERE CONTAINERID = :c", {"c": "secret-value"}
        )
    assert info.value.code == "DB_ERROR"
    assert "NO_SUCH_COLUMN" not in info.value.detail and "secret-value" not in info.value.detail
    assert wh.bulkhead.active == 0


def test_round_trips_are_counted(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    seen: list[str] = []
    wh.stats.listeners.append(lambda path, sql: seen.append(path))
    wh.read_sql_df("SELECT 1")
    list(wh.read_sql_df_slow_iter("SELECT 1"))
    assert seen == ["pooled", "slow"]
    assert wh.stats.count == 2


def test_duckdb_reader_caps_memory_and_spills_to_a_folder_of_its_own(tmp_path: Path) -> None:
    """DUCKDB_MEMORY_LIMIT and the spill folder apply to read-only connections (serve, worker);
    a sort larger than the cap spills there instead of failing; the writer keeps DuckDB's default."""
    url = f"duckdb:///{tmp_path / 'reader.duckdb'}"
    writer = Warehouse(url, read_only=False)
    assert writer.read_sql_df("SELECT current_setting('memory_limit') AS m").rows != [("64.0 MiB",)]
    writer.close()
    spill = tmp_path / "spill"
    stale = spill / "4194305"  # above any pid_max: a process that is gone
    stale.mkdir(parents=True)
    settings = Settings(duckdb_memory_limit="64MiB", duckdb_temp_directory=spill)
    reader = Warehouse(url, settings=settings)
    try:
        got = reader.read_sql_df(
            "SELECT current_setting('memory_limit') AS m, current_setting('temp_directory') AS t"
        ).rows
        own = spill.resolve() / str(os.getpid())
        assert got == [("64.0 MiB", str(own))]
        assert not stale.exists()
        sorted_rows = reader.read_sql_df_slow(
            "SELECT max(rn) AS n, count(*) AS c FROM (SELECT row_number() OVER (ORDER BY md5(i::VARCHAR)) AS rn"
            " FROM range(1500000) t(i))"
        ).rows
        assert sorted_rows == [(1_500_000, 1_500_000)]
        assert own.is_dir()  # spilled there
    finally:
        reader.close()
    assert not own.exists()  # DuckDB removes its folder on close


def test_duckdb_memory_limit_setting_is_validated() -> None:
    from pydantic import ValidationError

    assert Settings().duckdb_memory_limit == "1GiB"
    assert Settings(duckdb_memory_limit="2 GB").duckdb_memory_limit == "2 GB"
    for bad in ("80%", "1GB'; DROP TABLE x; --", "lots"):
        with pytest.raises(ValidationError):
            Settings(duckdb_memory_limit=bad)


def _indexed_file(path: Path, rows: int) -> str:
    url = f"duckdb:///{path}"
    writer = Warehouse(url, read_only=False)
    with writer.write_connection() as conn:
        conn.execute(f"CREATE TABLE t AS SELECT printf('%016x', i) AS id, i AS v FROM range({rows}) r(i)")
        conn.execute("CREATE INDEX ix_t_id ON t (id)")
        conn.execute("CHECKPOINT")
    writer.close()
    return url


def test_duckdb_reader_gives_memory_back_when_idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only DuckDB holding more than DUCKDB_REOPEN_ABOVE once its last query is done is
    closed and opened again: what it held (cache, loaded ART index) is given back, never while
    a query still streams, and every query before and after answers the same."""
    from mesdash.core.db.drivers import DuckDBDriver

    monkeypatch.setattr(DuckDBDriver, "REOPEN_CHECK_SECONDS", 0.0)
    url = _indexed_file(tmp_path / "art.duckdb", 400_000)
    settings = Settings(duckdb_memory_limit="256MiB", duckdb_reopen_above="1MiB",
                        duckdb_temp_directory=tmp_path / "spill")
    reader = Warehouse(url, settings=settings)
    driver = reader.driver
    assert isinstance(driver, DuckDBDriver)
    try:
        stream = reader.read_sql_df_slow_iter("SELECT id, v FROM t ORDER BY v", batch_size=1000)
        first = next(stream)[1]
        held = driver.memory_bytes()
        assert held > 2**20 and driver.reopens == 0  # still streaming: kept
        rest = [row for _, rows in stream for row in rows]
        assert len(first) + len(rest) == 400_000
        assert driver.reopens == 1  # the stream ended: given back
        assert driver.memory_bytes() < held
        probe = [f"{i:016x}" for i in range(0, 400_000, 997)]
        expected = sorted((f"{i:016x}", i) for i in range(0, 400_000, 997))
        for round_ in range(3):  # lookups load the index; each round ends in a reopen
            qb = QueryBuilder()
            sql = f"SELECT id, v FROM t WHERE {qb.in_condition('id', probe)} ORDER BY v"
            assert reader.read_sql_df_slow(sql, qb.params).rows == expected
            assert driver.reopens == 2 + round_
        assert reader.read_sql_df("SELECT current_setting('memory_limit') AS m").rows == [("256.0 MiB",)]
    finally:
        reader.close()
    with pytest.raises(WarehouseError):
        reader.read_sql_df("SELECT 1")


def test_duckdb_reopen_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesdash.core.db.drivers import DuckDBDriver

    monkeypatch.setattr(DuckDBDriver, "REOPEN_CHECK_SECONDS", 0.0)
    url = _indexed_file(tmp_path / "art.duckdb", 100_000)
    for settings, read_only in ((Settings(duckdb_reopen_above=""), True), (Settings(duckdb_reopen_above="1B"), False)):
        wh = Warehouse(url, settings=settings, read_only=read_only)
        try:
            for _ in range(3):
                assert wh.read_sql_df_slow("SELECT count(*) FROM t").rows == [(100_000,)]
            assert wh.driver.reopens == 0  # type: ignore[attr-defined]
        finally:
            wh.close()
