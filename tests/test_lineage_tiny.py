"""The engine over the generated tiny warehouse (DuckDB and PostgreSQL): every container's
closure in both directions equals the reference BFS over the same tables, and the planted
oddities (self-references, cycles, missing parents, chains past the cap) are reported."""

from __future__ import annotations

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.service import LineageEngine
from test_lineage_graph import Genealogy
from test_lineage_property import expected


def read_genealogy(wh: Warehouse) -> Genealogy:
    g = Genealogy()
    for cid, parent in wh.read_sql_df("SELECT CONTAINERID, SPLITFROMID FROM dwh.DW_MES_CONTAINER").rows:
        g.add(cid, parent)
    for source, lot in wh.read_sql_df("SELECT CONTAINERID, LOTID FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS").rows:
        g.merge(source, lot)
    return g


def test_every_container_matches_the_reference(tiny_warehouse: Warehouse) -> None:
    g = read_genealogy(tiny_warehouse)
    seeds = [*sorted(g.split), "0000000000000000"]
    engine = LineageEngine(tiny_warehouse)
    before = tiny_warehouse.stats.count
    backward = engine.resolve_full_genealogy(seeds)
    assert tiny_warehouse.stats.count - before <= 3  # walk, attributes, GD originals
    closures, capped = expected(g, seeds, forward=False)
    assert backward["ancestors"] == closures
    diagnostics = backward["diagnostics"]
    assert diagnostics["depth_capped"] == capped and capped  # the planted deep chains
    assert diagnostics["cycles"]  # planted self-references and cycles
    assert any(c == [cid] for c in diagnostics["cycles"] for cid in c)  # a self-reference
    assert diagnostics["missing_parents"]
    assert diagnostics["missing_seeds"] == ["0000000000000000"]
    kinds = {e["edge_type"] for e in backward["edges"]}
    assert {"split_from", "merge_source", "wafer_origin", "gd_rework_source"} <= kinds
    types = {n["node_type"] for n in backward["nodes"].values()}
    assert {"WAFER", "GA", "GC", "GD"} <= types
    assert all(backward["seed_roots"][s] for s in seeds[:-1])

    forward = engine.resolve_descendants(seeds)
    closures, capped = expected(g, seeds, forward=True)
    assert forward["descendants"] == closures
    assert forward["diagnostics"]["depth_capped"] == capped
    serials = forward["leaf_serials"]
    assert serials and all(len(v) >= 1 for v in serials.values())
