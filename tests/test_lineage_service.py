"""LineageEngine against real warehouses (DuckDB and PostgreSQL): exact answers on small
hand-made genealogies, diagnostics, and round trips that do not grow with the seeds."""

from __future__ import annotations

from typing import Any

import pytest

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.service import LineageEngine
from test_lineage_graph import Genealogy, forest, load_graph, reference


def engine_over(wh: Any, g: Genealogy, **kwargs: Any) -> LineageEngine:
    load_graph(wh, g)
    return LineageEngine(wh, **kwargs)


def chain(g: Genealogy, prefix: str, length: int, top: str | None) -> str:
    """``length`` nodes each split from the next one, the last from ``top``; returns the
    first (deepest) node."""
    names = [f"{prefix}{i:02d}" for i in range(length)]
    for i, cid in enumerate(names):
        g.add(cid, names[i + 1] if i + 1 < length else top)
    return names[0]


# ------------------------------------------------------------------------ backward ----
def test_full_genealogy_follows_splits_and_merges(empty_warehouse: Warehouse) -> None:
    g = (
        Genealogy()
        .add("wafer1", name="GC0001-A00-001", mfgorder="GC0001", firstname="WF-1")
        .add("lot1", "wafer1", name="GA0001-A00-001", mfgorder="GA0001", firstname="WF-1")
        .add("lot1a", "lot1", name="GA0001-A00-001-01", mfgorder="GA0001", firstname="WF-1")
        .add("other", name="GA0002-A00-001", mfgorder="GA0002", firstname="WF-2")
        .add("fin", name="GA0001-F01", mfgorder="GA0001")
        .merge("lot1a", "fin", "SN-1")
        .merge("other", "fin", "SN-1")
    )
    result = engine_over(empty_warehouse, g).resolve_full_genealogy(["fin"])
    assert result["ancestors"] == {"fin": ["lot1", "lot1a", "other", "wafer1"]}
    assert result["seed_roots"] == {"fin": ["GA0002-A00-001", "GC0001-A00-001"]}
    structural = [e for e in result["edges"] if e["edge_type"] in ("split_from", "merge_source")]
    assert structural == [
        {"from_cid": "lot1", "to_cid": "lot1a", "edge_type": "split_from"},
        {"from_cid": "lot1a", "to_cid": "fin", "edge_type": "merge_source"},
        {"from_cid": "other", "to_cid": "fin", "edge_type": "merge_source"},
        {"from_cid": "wafer1", "to_cid": "lot1", "edge_type": "split_from"},
    ]
    wafer = [e for e in result["edges"] if e["edge_type"] == "wafer_origin"]
    assert wafer == [  # where each wafer lot enters the graph, not on every node
        {"from_cid": "wafer:WF-1", "to_cid": "wafer1", "edge_type": "wafer_origin"},
        {"from_cid": "wafer:WF-2", "to_cid": "other", "edge_type": "wafer_origin"},
    ]
    nodes = result["nodes"]
    assert sorted(nodes) == ["fin", "lot1", "lot1a", "other", "wafer1", "wafer:WF-1", "wafer:WF-2"]
    assert nodes["lot1a"] == {
        "container_id": "lot1a",
        "container_name": "GA0001-A00-001-01",
        "mfgorder_name": "GA0001",
        "wafer_lot": "WF-1",
        "node_type": "GA",
    }
    assert nodes["wafer1"]["node_type"] == "GC"
    assert nodes["wafer:WF-1"]["node_type"] == "WAFER"
    assert result["diagnostics"] == {
        "cycles": [],
        "missing_parents": [],
        "depth_capped": [],
        "missing_seeds": [],
        "max_depth": 20,
    }


def test_merge_source_split_ancestors_and_their_merges(empty_warehouse: Warehouse) -> None:
    # fin <- (merge) s1 <- (split) p1 <- (merge) q1 <- (split) q0: a merge of a merge
    g = (
        Genealogy()
        .add("q0")
        .add("q1", "q0")
        .add("p1")
        .add("s1", "p1")
        .add("fin")
        .merge("s1", "fin")
        .merge("q1", "p1")
    )
    result = engine_over(empty_warehouse, g).resolve_full_genealogy(["fin", "s1"])
    assert result["ancestors"] == {"fin": ["p1", "q0", "q1", "s1"], "s1": ["p1", "q0", "q1"]}
    assert result["seed_roots"] == {"fin": ["N-q0"], "s1": ["N-q0"]}


def test_gd_rework_source_is_an_annotation(empty_warehouse: Warehouse) -> None:
    g = (
        Genealogy()
        .add("orig", name="GA0009-A00-001", mfgorder="GA0009")
        .add("gd", name="GD0009-A00-001", mfgorder="GD0009", original="orig")
        .add("gdchild", "gd", name="GD0009-A00-001-01", mfgorder="GD0009", original="orig")
    )
    result = engine_over(empty_warehouse, g).resolve_full_genealogy(["gdchild"])
    assert result["ancestors"] == {"gdchild": ["gd"]}  # not followed into the closure
    rework = [e for e in result["edges"] if e["edge_type"] == "gd_rework_source"]
    assert rework == [
        {"from_cid": "orig", "to_cid": "gd", "edge_type": "gd_rework_source"},
        {"from_cid": "orig", "to_cid": "gdchild", "edge_type": "gd_rework_source"},
    ]
    assert result["nodes"]["orig"]["node_type"] == "GA"
    assert result["nodes"]["gd"]["node_type"] == "GD"


def test_missing_parents_are_reported_not_followed(empty_warehouse: Warehouse) -> None:
    g = Genealogy().add("a", "ghost").add("b", "a").add("fin").merge("b", "fin").merge("lost", "fin")
    # the ghost "has" a parent row only through a container that does not exist
    result = engine_over(empty_warehouse, g).resolve_full_genealogy(["fin", "nowhere"])
    assert result["ancestors"] == {"fin": ["a", "b"], "nowhere": []}
    assert "ghost" not in result["nodes"] and "lost" not in result["nodes"]
    assert result["diagnostics"]["missing_parents"] == [
        {"child_cid": "a", "parent_cid": "ghost", "edge_type": "split_from"},
        {"child_cid": "fin", "parent_cid": "lost", "edge_type": "merge_source"},
    ]
    assert result["diagnostics"]["missing_seeds"] == ["nowhere"]
    assert result["seed_roots"] == {"fin": ["N-a"], "nowhere": []}


def test_cycles_and_self_references(empty_warehouse: Warehouse) -> None:
    g = Genealogy().add("a", "c").add("b", "a").add("c", "b").add("d", "a").add("s", "s")
    engine = engine_over(empty_warehouse, g)
    result = engine.resolve_full_genealogy(["d", "a", "s"])
    assert result["ancestors"] == {"d": ["a", "b", "c"], "a": ["b", "c"], "s": []}
    assert result["diagnostics"]["cycles"] == [["a", "b", "c"], ["s"]]
    assert {e["from_cid"] for e in result["edges"] if e["to_cid"] == "s"} == set()
    assert result["seed_roots"]["a"] == ["N-b"]  # a pure cycle: the farthest node
    forward = engine.resolve_descendants(["a", "s"])
    assert forward["descendants"] == {"a": ["b", "c", "d"], "s": []}
    assert forward["diagnostics"]["cycles"] == [["a", "b", "c"], ["s"]]


def test_shortest_path_decides_and_the_cap_is_reported(empty_warehouse: Warehouse) -> None:
    # seed -> p1 -> p2 -> x (3 edges) and seed -> d01 … d24 -> x (a 25-edge detour)
    g = Genealogy().add("y").add("x", "y").add("p2", "x").add("p1", "p2").add("seed", "p1")
    first = chain(g, "d", 24, "x")
    g.merge(first, "seed")
    result = engine_over(empty_warehouse, g).resolve_full_genealogy(["seed"])
    ancestors = set(result["ancestors"]["seed"])
    assert {"p1", "p2", "x", "y"} <= ancestors
    detour = [f"d{i:02d}" for i in range(24)]
    assert [d for d in detour if d in ancestors] == detour[:20]  # d00 is 1 edge away
    assert result["diagnostics"]["depth_capped"] == ["seed"]
    assert reference(g, "seed", forward=False) == (ancestors, True)


def test_depth_cap_counts_edges(empty_warehouse: Warehouse) -> None:
    g = Genealogy()
    long_end = chain(g, "l", 26, None)  # 25 edges above l00
    exact_end = chain(g, "e", 21, None)  # 20 edges above e00
    result = engine_over(empty_warehouse, g).resolve_full_genealogy([long_end, exact_end])
    assert result["ancestors"][long_end] == [f"l{i:02d}" for i in range(1, 21)]
    assert result["ancestors"][exact_end] == [f"e{i:02d}" for i in range(1, 21)]
    assert result["diagnostics"]["depth_capped"] == [long_end]
    assert result["seed_roots"][long_end] == ["N-l20"]
    small = engine_over(empty_warehouse, g, max_depth=3).resolve_full_genealogy([exact_end])
    assert small["ancestors"][exact_end] == ["e01", "e02", "e03"]
    assert small["diagnostics"]["max_depth"] == 3


def test_split_ancestors_ignore_merges(empty_warehouse: Warehouse) -> None:
    g = Genealogy().add("r", name="ROOT").add("a", "r").add("b", "a").add("m").merge("m", "b")
    g.add("z", "ghost")
    result = engine_over(empty_warehouse, g).resolve_split_ancestors(["b", "z", "nope"])
    assert result["child_to_parent"] == {"a": "r", "b": "a"}
    assert result["cid_to_name"] == {"a": "N-a", "b": "N-b", "r": "ROOT", "z": "N-z"}
    assert result["ancestors"] == {"b": ["a", "r"], "z": [], "nope": []}
    assert result["diagnostics"]["missing_parents"] == [
        {"child_cid": "z", "parent_cid": "ghost", "edge_type": "split_from"}
    ]


def test_merge_sources_one_level(empty_warehouse: Warehouse) -> None:
    g = Genealogy().add("f").add("g").merge("a", "f").merge("b", "f").merge("f", "g").merge("g", "g")
    engine = engine_over(empty_warehouse, g)
    assert engine.resolve_merge_sources([" f ", "g", "f", "", "x"]) == {"f": ["a", "b"], "g": ["f"]}


# ------------------------------------------------------------------------- forward ----
def test_descendants_and_leaf_serials(empty_warehouse: Warehouse) -> None:
    g = (
        Genealogy()
        .add("r")
        .add("a", "r")
        .add("b", "r")
        .add("c", "b")
        .add("fin")
        .merge("a", "fin", "SN-9")
        .merge("c", "fin", "SN-9")
        .merge("b", "gone", "SN-7")
    )
    result = engine_over(empty_warehouse, g).resolve_descendants(["r", "c"])
    assert result["descendants"] == {"r": ["a", "b", "c", "fin"], "c": ["fin"]}
    assert result["leaf_serials"] == {"fin": ["SN-9"]}
    assert result["diagnostics"]["missing_children"] == [
        {"parent_cid": "b", "child_cid": "gone", "edge_type": "merge_source"}
    ]
    assert {"from_cid": "c", "to_cid": "fin", "edge_type": "merge_source"} in result["edges"]
    assert "ancestors" not in result and result["direction"] == "forward"
    # a leaf whose finished lot has no container row shows that lot's serial
    g2 = Genealogy().add("x").merge("x", "gone", "SN-1")
    assert engine_over(empty_warehouse, g2).resolve_descendants(["x"])["leaf_serials"] == {"x": ["SN-1"]}


def test_empty_input_reads_nothing(empty_warehouse: Warehouse) -> None:
    engine = LineageEngine(empty_warehouse)
    before = empty_warehouse.stats.count
    assert engine.resolve_full_genealogy(["", "  "])["ancestors"] == {}
    assert engine.resolve_descendants([])["descendants"] == {}
    assert empty_warehouse.stats.count == before


# --------------------------------------------------------------- set-at-a-time ----
@pytest.fixture
def forest_warehouse(empty_warehouse: Warehouse) -> tuple[Warehouse, list[str]]:
    g, leaves = forest(1250, depth=3, width=2)  # 10,000 leaves, 20,000 containers
    load_graph(empty_warehouse, g)
    return empty_warehouse, leaves


def test_round_trips_do_not_grow_with_the_seeds(
    forest_warehouse: tuple[Warehouse, list[str]],
) -> None:
    wh, leaves = forest_warehouse
    seen: list[str] = []
    wh.stats.listeners.append(lambda path, sql: seen.append(f"{path} {sql}"))
    counts = {}
    for n in (1, 100, 10_000):
        for direction in ("backward", "forward"):
            engine = LineageEngine(wh)
            before, slow_before = wh.stats.count, wh.stats.slow_count
            result = engine.resolve(leaves[:n], direction)  # type: ignore[arg-type]
            counts[(n, direction)] = wh.stats.count - before
            assert wh.stats.slow_count - slow_before == counts[(n, direction)]  # slow path
            key = "ancestors" if direction == "backward" else "descendants"
            assert len(result[key]) == n
    # one walk + one attribute lookup (+ the leaf serials forward), whatever the seed count
    assert {counts[(n, "backward")] for n in (1, 100, 10_000)} == {2}
    assert {counts[(n, "forward")] for n in (1, 100, 10_000)} == {3}
    assert seen and not any("HM_LOTMOVEOUT" in sql.upper() for sql in seen)


def test_seed_batches_bound_the_walks(forest_warehouse: tuple[Warehouse, list[str]]) -> None:
    wh, leaves = forest_warehouse
    engine = LineageEngine(wh, seed_batch_size=1000)
    before = wh.stats.count
    result = engine.resolve_full_genealogy(leaves)
    assert wh.stats.count - before == 10 + 1  # 10 walks of 1000 seeds, one lookup
    assert result["ancestors"][leaves[0]] == ["t00000r", "t00000r.0", "t00000r.0.0"]
    assert result["seed_roots"][leaves[-1]] == ["N-t01249r"]
