"""Property tests: on random genealogies — cycles, self-loops, diamonds, merges of merges,
missing containers, chains longer than the depth cap — the engine's closures equal a plain
breadth-first search with the same depth bound, on DuckDB and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesdash.core.db.warehouse import Warehouse
from mesdash.core.validation import normalize_ids
from mesdash.lineage.service import LineageEngine
from test_lineage_graph import MAX_DEPTH, Genealogy, Reference, load_graph

GHOSTS = ["g0", "g1", "g2"]  # named by edges, never inserted


@st.composite
def genealogies(draw: Any) -> tuple[Genealogy, list[str]]:
    ids = [f"n{i:02d}" for i in range(draw(st.integers(1, 24)))]
    refs = st.sampled_from(ids + GHOSTS)
    g = Genealogy()
    for cid in ids:  # a parent may be the node itself, a ghost, or form a cycle
        g.add(cid, draw(st.one_of(st.none(), refs)))
    for source, lot in draw(st.lists(st.tuples(refs, refs), max_size=2 * len(ids))):
        g.merge(source, lot)
    seeds = draw(st.lists(st.sampled_from([*ids, *GHOSTS, " n00 ", ""]), min_size=1, max_size=6))
    if draw(st.booleans()):  # a chain past the cap, hanging from the graph or not
        length = draw(st.integers(MAX_DEPTH + 1, MAX_DEPTH + 6))
        chain = [f"k{i:02d}" for i in range(length)]
        for i, cid in enumerate(chain):
            g.add(cid, chain[i + 1] if i + 1 < length else draw(st.one_of(st.none(), refs)))
        if draw(st.booleans()):
            g.merge(draw(refs), chain[0])
        seeds += [chain[0], chain[-1]]
    return g, seeds


def expected(g: Genealogy, seeds: list[str], forward: bool) -> tuple[dict[str, list[str]], list[str]]:
    """Per-seed closures and the capped seeds, by the reference BFS."""
    ref = Reference(g)
    closures, capped = {}, []
    for seed in seeds:
        found, cut = ref.closure(seed, forward)
        closures[seed] = sorted(found)
        if cut:
            capped.append(seed)
    return closures, sorted(capped)


def check(wh: Warehouse, g: Genealogy, raw_seeds: list[str]) -> None:
    load_graph(wh, g)
    engine = LineageEngine(wh)
    seeds = normalize_ids(raw_seeds)
    for forward in (False, True):
        result = engine.resolve(raw_seeds, "forward" if forward else "backward")
        closures, capped = expected(g, seeds, forward)
        assert result["descendants" if forward else "ancestors"] == closures
        diagnostics = result["diagnostics"]
        assert diagnostics["depth_capped"] == capped
        assert diagnostics["missing_seeds"] == sorted(s for s in seeds if s not in g.split)
        members = {cid for found in closures.values() for cid in found} | {s for s in seeds if s in g.split}
        structural = {
            (e["from_cid"], e["to_cid"])
            for e in result["edges"]
            if e["edge_type"] in ("split_from", "merge_source")
        }
        real = {(p, c) for c, p in g.split.items() if p} | set(g.merges)
        assert structural <= real
        assert members <= set(result["nodes"])
    split_only = Genealogy(split=g.split)
    ancestors = engine.resolve_split_ancestors(raw_seeds)["ancestors"]
    assert ancestors == expected(split_only, seeds, forward=False)[0]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=genealogies())
def test_closures_equal_a_plain_bfs(empty_warehouse: Warehouse, case: tuple[Genealogy, list[str]]) -> None:
    g, seeds = case
    check(empty_warehouse, g, seeds)
