"""Lineage test support (graph loading, the reference BFS) and the pure graph functions.

Other lineage test modules import the helpers from here: ``load_graph`` writes a genealogy
into a writable warehouse (Arrow insert on DuckDB, COPY on PostgreSQL) and ``reference``
answers the same question as the engine with a plain breadth-first search.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage import graph
from mesdash.lineage.model import Snapshot, node_type

CONTAINER_COLUMNS = (
    "CONTAINERID",
    "CONTAINERNAME",
    "MFGORDERNAME",
    "OBJECTTYPE",
    "FIRSTNAME",
    "SPLITFROMID",
    "ORIGINALCONTAINERID",
)
MERGE_COLUMNS = ("CONTAINERID", "LOTID", "FINISHEDNAME")
MAX_DEPTH = 20


@dataclass
class Genealogy:
    """Containers (id → SPLITFROMID, may name a missing id) and merges (source → lot)."""

    split: dict[str, str | None] = field(default_factory=dict)
    merges: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    serials: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, cid: str, parent: str | None = None, **attrs: str | None) -> Genealogy:
        self.split[cid] = parent
        if attrs:
            self.attrs[cid] = attrs
        return self

    def merge(self, source: str, lot: str, serial: str | None = None) -> Genealogy:
        self.merges.append((source, lot))
        if serial:
            self.serials[(source, lot)] = serial
        return self

    def container_rows(self) -> list[tuple[str | None, ...]]:
        rows = []
        for cid, parent in self.split.items():
            a = self.attrs.get(cid, {})
            rows.append(
                (
                    cid,
                    a.get("name", f"N-{cid}"),
                    a.get("mfgorder"),
                    a.get("objecttype", "LOT"),
                    a.get("firstname"),
                    parent,
                    a.get("original"),
                )
            )
        return rows

    def merge_rows(self) -> list[tuple[str | None, ...]]:
        return [(s, lot, self.serials.get((s, lot))) for s, lot in self.merges]


class Reference:
    """The engine's question answered by a plain breadth-first search over ``g``."""

    def __init__(self, g: Genealogy) -> None:
        self.exists = set(g.split)
        self.up: dict[str, list[str]] = {}
        self.down: dict[str, list[str]] = {}
        edges = [(p, c) for c, p in g.split.items() if p] + list(g.merges)
        for source, target in edges:
            self.up.setdefault(target, []).append(source)
            self.down.setdefault(source, []).append(target)

    def closure(self, seed: str, forward: bool, max_depth: int = MAX_DEPTH) -> tuple[set[str], bool]:
        """(closure, capped): existing nodes within ``max_depth`` edges, the seed left out;
        capped when an existing node lies one edge further."""
        if seed not in self.exists:
            return set(), False
        step = self.down if forward else self.up
        dist = {seed: 0}
        queue = deque([seed])
        capped = False
        while queue:
            node = queue.popleft()
            for nxt in step.get(node, ()):
                if nxt in dist or nxt not in self.exists:
                    continue
                if dist[node] == max_depth:
                    capped = True
                    continue
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
        return set(dist) - {seed}, capped


def reference(g: Genealogy, seed: str, forward: bool, max_depth: int = MAX_DEPTH) -> tuple[set[str], bool]:
    return Reference(g).closure(seed, forward, max_depth)


def load_graph(wh: Warehouse, g: Genealogy) -> None:
    """Replace the container and merge tables' rows with ``g``."""
    tables = {
        "DW_MES_CONTAINER": (CONTAINER_COLUMNS, g.container_rows()),
        "DW_MES_PJ_COMBINEDASSYLOTS": (MERGE_COLUMNS, g.merge_rows()),
    }
    with wh.write_connection() as conn:
        cursor = conn.cursor()
        for table, (columns, rows) in tables.items():
            cursor.execute(f"DELETE FROM dwh.{table}")
            if not rows:
                continue
            names = ", ".join(columns)
            if wh.dialect == "duckdb":
                data = pa.table(
                    {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)}
                )
                conn.register("incoming_rows", data)
                conn.execute(f"INSERT INTO dwh.{table} ({names}) SELECT {names} FROM incoming_rows")
                conn.unregister("incoming_rows")
            else:
                with cursor.copy(f"COPY dwh.{table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        cursor.close()


def forest(trees: int, depth: int = 3, width: int = 2) -> tuple[Genealogy, list[str]]:
    """``trees`` split trees (a root, ``width`` children per node, ``depth`` levels), the
    leaves of each merged into a finished lot; returns the graph and its leaf ids."""
    g = Genealogy()
    leaves: list[str] = []
    for t in range(trees):
        level = [f"t{t:05d}r"]
        g.add(level[0], mfgorder=f"GA{t:05d}", firstname=f"W{t:05d}")
        for _ in range(depth):
            nxt = []
            for parent in level:
                for w in range(width):
                    cid = f"{parent}.{w}"
                    g.add(cid, parent, mfgorder=f"GA{t:05d}", firstname=f"W{t:05d}")
                    nxt.append(cid)
            level = nxt
        finished = f"t{t:05d}F"
        g.add(finished, mfgorder=f"GA{t:05d}")
        for leaf in level:
            g.merge(leaf, finished, f"SN{t:05d}")
        leaves.extend(level)
    return g, leaves


# ----------------------------------------------------------------- pure graph tests ----
ADJ = {
    "s": [("a", "split_from"), ("m", "merge_source")],
    "a": [("b", "split_from")],
    "b": [("a", "split_from")],  # a <-> b cycle
    "m": [("m", "split_from"), ("x", "split_from")],  # self-loop, missing x
}


def test_closure_is_cycle_safe_and_leaves_the_seed_out() -> None:
    found = graph.closure("s", ADJ, {"s", "a", "b", "m"}, MAX_DEPTH)
    assert found.depth == {"a": 1, "m": 1, "b": 2}
    assert found.missing == {("m", "x", "split_from")}
    assert found.capped is False


def test_closure_depth_cap() -> None:
    chain = {f"n{i}": [(f"n{i + 1}", "split_from")] for i in range(30)}
    exists = {f"n{i}" for i in range(31)}
    found = graph.closure("n0", chain, exists, 20)
    assert sorted(found.depth.values()) == list(range(1, 21))
    assert found.capped is True
    assert graph.closure("n10", chain, exists, 20).capped is False  # n30 is the last one


def test_cycles_finds_components_and_self_loops_only() -> None:
    assert graph.cycles({"s", "a", "b", "m"}, ADJ) == [["a", "b"], ["m"]]
    assert graph.cycles({"s", "a"}, ADJ) == []  # b is outside the set


def reachable(start: str, succ: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(succ.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(succ.get(node, ()))
    return seen


@given(
    edges=st.lists(st.tuples(st.integers(0, 14), st.integers(0, 16)), max_size=40),
    members=st.sets(st.integers(0, 16)),
)
def test_cycles_equal_mutual_reachability(edges: list[tuple[int, int]], members: set[int]) -> None:
    """The pruned Tarjan finds what the definition says: nodes of ``members`` that reach
    each other (or themselves) inside ``members``, grouped, sorted — tails into and out of
    cycles included."""
    adjacency: dict[str, list[tuple[str, str]]] = {}
    for a, b in edges:
        adjacency.setdefault(f"n{a:02}", []).append((f"n{b:02}", "split_from"))
    inside = {f"n{m:02}" for m in members}
    succ = {n: {m for m, _ in adjacency.get(n, ()) if m in inside} for n in inside}
    reach = {n: reachable(n, succ) for n in inside}
    expected = sorted({tuple(sorted(m for m in reach[n] if n in reach[m])) for n in inside if n in reach[n]})
    assert graph.cycles(inside, adjacency) == [list(c) for c in expected]


def test_roots_with_and_without_a_top() -> None:
    parents = {"c": [("b", "split_from")], "b": [("a", "split_from")]}
    assert graph.roots({"a", "b", "c"}, parents, {"c": 0, "b": 1, "a": 2}) == ["a"]
    loop = {"a": [("b", "split_from")], "b": [("a", "split_from")]}
    assert graph.roots({"a", "b"}, loop, {"a": 0, "b": 1}) == ["b"]


@pytest.mark.parametrize(
    ("name", "mfgorder", "objecttype", "expected"),
    [
        ("GA23100020-A00-011", "GA23100020", "LOT", "GA"),
        ("GD23100020-A00-011", "GA23100020", "LOT", "GD"),  # GD wins over GA
        ("X-1", "gc2301", "LOT", "GC"),
        ("X-1", None, "LOT", "LOT"),
        ("X-1", None, "MATERIAL", "UNKNOWN"),
    ],
)
def test_node_type(name: str, mfgorder: str | None, objecttype: str, expected: str) -> None:
    assert node_type(name, mfgorder, objecttype) == expected
    row = ("cid", name, mfgorder, None, objecttype, None)
    assert Snapshot.from_row(row).kind == expected


def test_reference_bfs_matches_hand_count() -> None:
    g = Genealogy().add("r").add("a", "r").add("b", "a").add("f").merge("b", "f").merge("zz", "f")
    assert reference(g, "f", forward=False) == ({"b", "a", "r"}, False)
    assert reference(g, "r", forward=True) == ({"a", "b", "f"}, False)
    assert reference(g, "f", forward=False, max_depth=2) == ({"b", "a"}, True)
    assert reference(g, "nope", forward=False) == (set(), False)


def test_collector_pause_nests_and_restores() -> None:
    import gc

    from mesdash.lineage.collector import CollectorPause

    pause = CollectorPause()
    assert gc.isenabled()
    with pause:
        assert not gc.isenabled()
        with pause:
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with pause:
            pass
        assert not gc.isenabled()  # was off before: stays off
    finally:
        gc.enable()
