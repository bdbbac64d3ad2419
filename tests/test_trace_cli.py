"""``mesdash events``: resolves lot names and prints their events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from mesdash.cli import app
from mesdash.core.db import Warehouse
from mesdash.trace import cli


@pytest.fixture
def lot(tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(cli, "get_warehouse", lambda: tiny_warehouse)
    return tiny_warehouse.read_sql_df(
        "SELECT CONTAINERID, CONTAINERNAME FROM dwh.DW_MES_CONTAINER c WHERE OBJECTTYPE = 'LOT' AND EXISTS "
        "(SELECT 1 FROM dwh.DW_MES_LOTREJECTHISTORY r WHERE r.CONTAINERID = c.CONTAINERID) "
        "ORDER BY CONTAINERNAME FETCH FIRST 1 ROWS ONLY"
    ).to_dicts()[0]


def test_table_of_rejects(lot: dict[str, str], tiny_warehouse: Warehouse) -> None:
    expected = tiny_warehouse.read_sql_df(
        "SELECT COUNT(*) FROM dwh.DW_MES_LOTREJECTHISTORY WHERE CONTAINERID = :c", {"c": lot["CONTAINERID"]}
    ).rows[0][0]
    result = CliRunner().invoke(
        app, ["events", lot["CONTAINERNAME"], "NOPE-9", "--domain", "rejects", "--columns", "LOSSREASONNAME,CHARGED_OFF_QTY"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert f"rejects: {expected} rows, 1 lots" in result.output
    assert "not found: NOPE-9" in result.output and "LOSSREASONNAME" in result.output


def test_json_and_bad_domain(lot: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["events", lot["CONTAINERNAME"], "--domain", "holds", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["quality"]["status"] == "complete"
    bad = CliRunner().invoke(app, ["events", lot["CONTAINERNAME"], "--domain", "weather"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_trace_command_writes_each_domain(
    fmt: str, tiny_url: str, tiny_warehouse: Warehouse, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from mesdash.core.db.warehouse import reset_warehouse
    from mesdash.settings import reset_settings

    monkeypatch.setenv("MESDASH_DATABASE_URL", tiny_url)
    monkeypatch.setenv("MESDASH_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("TRACE_JOB_ID_BATCH_SIZE", "2")
    reset_settings()
    reset_warehouse()
    lots = tiny_warehouse.read_sql_df(
        "SELECT CONTAINERID, CONTAINERNAME FROM dwh.DW_MES_CONTAINER c WHERE OBJECTTYPE = 'LOT' AND EXISTS "
        "(SELECT 1 FROM dwh.DW_MES_LOTREJECTHISTORY r WHERE r.CONTAINERID = c.CONTAINERID) "
        "ORDER BY CONTAINERNAME FETCH FIRST 5 ROWS ONLY"
    ).to_dicts()
    out = tmp_path / "out"
    try:
        result = CliRunner().invoke(
            app, ["trace", *[lot["CONTAINERNAME"] for lot in lots], "--domains", "rejects,history",
                  "--out", str(out), "--format", fmt],
        )
    finally:
        reset_warehouse()
    assert result.exit_code == 0, result.output
    binds = ", ".join(f":c{i}" for i in range(len(lots)))
    params = {f"c{i}": lot["CONTAINERID"] for i, lot in enumerate(lots)}
    for domain, table in (("history", "DW_MES_LOTWIPHISTORY"), ("rejects", "DW_MES_LOTREJECTHISTORY")):
        expected = tiny_warehouse.read_sql_df(
            f"SELECT COUNT(*) FROM dwh.{table} WHERE CONTAINERID IN ({binds})", params
        ).rows[0][0]
        path = out / f"{domain}.{fmt}"
        written = pq.read_table(path) if fmt == "parquet" else pcsv.read_csv(path)
        assert written.num_rows == expected > 0
        assert f"{domain}: {expected:,} rows" in result.output
