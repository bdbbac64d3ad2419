"""``mesdash events``: resolves lot names and prints their events."""

from __future__ import annotations

import json

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
