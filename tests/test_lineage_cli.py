"""``mesdash lineage LOT_NAME… [--forward] [--json]`` on DuckDB and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage import cli
from test_lineage_graph import Genealogy, load_graph

GRAPH = (
    Genealogy()
    .add("root", name="GA0001-A00-001", mfgorder="GA0001", firstname="WF-1")
    .add("kid", "root", name="GA0001-A00-001-01", mfgorder="GA0001")
    .add("gd", "kid", name="GD0001-A00-001", mfgorder="GD0001", original="root")
    .add("fin", name="GA0001-F01", mfgorder="GA0001")
    .merge("kid", "fin", "SN-1")
    .merge("ghost", "fin")
)


@pytest.fixture
def runner(empty_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, typer.Typer]:
    load_graph(empty_warehouse, GRAPH)
    monkeypatch.setattr(cli, "get_warehouse", lambda: empty_warehouse)
    app = typer.Typer()
    app.command()(cli.lineage)
    app.command("other")(lambda: None)  # two commands: `lineage` is addressed by name
    return CliRunner(), app


def test_backward_tree(runner: tuple[CliRunner, typer.Typer]) -> None:
    cli_runner, app = runner
    result = cli_runner.invoke(app, ["lineage", "GA0001-F01", "NOPE-1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "NOPE-1: no such lot"
    assert lines[1].startswith("GA0001-F01 GA fin")
    assert "merge_source: GA0001-A00-001-01 GA kid" in lines[2]
    assert "split_from: GA0001-A00-001 GA root" in lines[3]
    assert "wafer_origin: WF-1 WAFER wafer:WF-1" in lines[4]
    assert "1 missing container(s)" in result.output


def test_forward_tree_shows_serials(runner: tuple[CliRunner, typer.Typer]) -> None:
    cli_runner, app = runner
    result = cli_runner.invoke(app, ["lineage", "--forward", "GA0001-A00-001"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "GA0001-F01 GA fin → serials SN-1" in result.output
    assert "GD0001-A00-001 GD gd" in result.output


def test_json_output(runner: tuple[CliRunner, typer.Typer]) -> None:
    cli_runner, app = runner
    result = cli_runner.invoke(app, ["lineage", "--json", "GD0001-A00-001"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["names"] == {"GD0001-A00-001": ["gd"]}
    assert payload["result"]["ancestors"] == {"gd": ["kid", "root"]}
    rework = [e for e in payload["result"]["edges"] if e["edge_type"] == "gd_rework_source"]
    assert rework == [{"from_cid": "root", "to_cid": "gd", "edge_type": "gd_rework_source"}]


def test_unknown_names_exit_1(runner: tuple[CliRunner, typer.Typer]) -> None:
    cli_runner, app = runner
    result = cli_runner.invoke(app, ["lineage", "NOPE-1"])
    assert result.exit_code == 1
    assert "NOPE-1: no such lot" in result.output
