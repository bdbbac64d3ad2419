"""LineageEngine: split / merge genealogy of lots, backward and forward, set-at-a-time.

Public functions take ``container_ids`` and return plain dicts; nothing here knows a page.
The engine is pure over the warehouse (same ids, same data → same answer), which is the
seam for the layered cache: key on ``(direction, sorted ids)``.

Rules (design.md, *Data rules*): a node is in a seed's closure when a path of at most
``MAX_SPLIT_DEPTH`` ``split_from`` / ``merge_source`` edges reaches it (shortest path);
cycles and self-references never loop; the seed is not its own ancestor; only containers
that exist are followed; ``diagnostics`` lists cycles, missing neighbours and capped seeds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mesdash.core.cache import LayeredCache, cache_key
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.validation import normalize_ids
from mesdash.lineage import graph
from mesdash.lineage.collector import collector_paused
from mesdash.lineage.model import STRUCTURAL, Direction, Edge, Snapshot
from mesdash.lineage.nodes import gd_sources, shape_graph
from mesdash.lineage.walks import BACKWARD_WALK, FORWARD_WALK, SPLIT_WALK, LineageReader, Walk


@dataclass
class Solved:
    """Per-seed closures over one walk, and what the whole graph shows."""

    seeds: list[str]
    walk: Walk
    closures: dict[str, graph.Closure]
    members: set[str]  # every closure plus the existing seeds
    edges: list[Edge]  # structural edges between members (no self-loops), in the walk's order
    adjacency: dict[str, list[tuple[str, str]]]  # in the walk's direction
    diagnostics: dict[str, Any]

    def per_seed(self) -> Iterator[tuple[str, graph.Closure | None]]:
        """Every input seed (in input order) with its closure; None: not in the warehouse."""
        return ((seed, self.closures.get(seed)) for seed in self.seeds)

    def closure_lists(self) -> dict[str, list[str]]:
        return {seed: sorted(found.depth) if found and found.depth else [] for seed, found in self.per_seed()}


LINEAGE_CACHE_TTL = 600  # genealogy changes only when lots split or merge


def resolve_cached(
    warehouse: Warehouse,
    container_ids: Sequence[str],
    direction: Direction,
    cache: LayeredCache | None = None,
) -> dict[str, Any]:
    """``LineageEngine.resolve`` through the layered cache, keyed on the sorted ids and the
    direction (above ``EVENT_FETCHER_CACHE_SKIP_CID_THRESHOLD`` ids nothing is written)."""
    ids = normalize_ids(container_ids)
    key = cache_key("lineage", direction, {"ids": ids, "depth": warehouse.settings.max_split_depth})
    write = len(ids) <= warehouse.settings.event_fetcher_cache_skip_cid_threshold
    return (cache or LayeredCache("")).get_or_compute(
        key, lambda: LineageEngine(warehouse).resolve(ids, direction), LINEAGE_CACHE_TTL, write=write
    )


class LineageEngine:
    """Genealogy of container ids over one warehouse; ``max_depth`` defaults to
    ``MAX_SPLIT_DEPTH`` and ``seed_batch_size`` to the dialect's batch (see ``walks``)."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        max_depth: int | None = None,
        seed_batch_size: int | None = None,
    ) -> None:
        settings = warehouse.settings
        self.max_depth = max_depth if max_depth is not None else settings.max_split_depth
        self.reader = LineageReader(warehouse, self.max_depth, seed_batch_size)

    # ------------------------------------------------------------------ public API -----
    def resolve(self, container_ids: Sequence[str], direction: Direction) -> dict[str, Any]:
        if direction == "forward":
            return self.resolve_descendants(container_ids)
        return self.resolve_full_genealogy(container_ids)

    @collector_paused
    def resolve_split_ancestors(self, container_ids: Sequence[str]) -> dict[str, Any]:
        """Split parents only (``SPLITFROMID``): ``child_to_parent`` and ``cid_to_name`` for
        every seed and ancestor reached, plus ``ancestors`` per seed and ``diagnostics``."""
        solved = self._solve(container_ids, SPLIT_WALK, "backward")
        nodes = solved.walk.nodes
        return {
            "child_to_parent": {child: parent for parent, child, _ in sorted(solved.edges)},
            "cid_to_name": {cid: nodes[cid].name or cid for cid in sorted(solved.members)},
            "ancestors": solved.closure_lists(),
            "diagnostics": solved.diagnostics,
        }

    def ids_by_name(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Lot name (CONTAINERNAME) → its container ids, for the names the warehouse knows."""
        found = self.reader.ids_by_name(normalize_ids(names))
        return {name: sorted(found[name]) for name in sorted(found)}

    def resolve_merge_sources(self, container_ids: Sequence[str]) -> dict[str, list[str]]:
        """``{finished lot: [merge source ids]}`` from DW_MES_PJ_COMBINEDASSYLOTS (one level,
        as recorded); lots without sources are left out."""
        found = self.reader.merge_sources(normalize_ids(container_ids))
        return {cid: sorted(found[cid]) for cid in sorted(found)}

    @collector_paused
    def resolve_full_genealogy(self, container_ids: Sequence[str]) -> dict[str, Any]:
        """Backward closure over split and merge edges together."""
        solved = self._solve(container_ids, BACKWARD_WALK, "backward")
        nodes, edges = self._shape(solved)
        parents = solved.adjacency
        ancestors: dict[str, list[str]] = {}
        seed_roots: dict[str, list[str]] = {}
        for seed, found in solved.per_seed():
            if found is None:
                ancestors[seed] = seed_roots[seed] = []
            elif not found.depth:  # a seed with nothing upstream is its own root
                ancestors[seed] = []
                seed_roots[seed] = [nodes[seed]["container_name"]]
            else:
                ancestors[seed] = sorted(found.depth)
                top = graph.roots({seed, *found.depth}, parents, found.depth)
                seed_roots[seed] = sorted(nodes[cid]["container_name"] for cid in top)
        return {
            "direction": "backward",
            "ancestors": ancestors,
            "nodes": nodes,
            "edges": edges,
            "seed_roots": seed_roots,
            "diagnostics": solved.diagnostics,
        }

    @collector_paused
    def resolve_descendants(self, container_ids: Sequence[str]) -> dict[str, Any]:
        """Forward closure: split children and the finished lots they were merged into,
        with the finished-goods serials of the leaves."""
        solved = self._solve(container_ids, FORWARD_WALK, "forward")
        nodes, edges = self._shape(solved)
        children = solved.adjacency
        exists = solved.walk.nodes
        leaves = [
            cid
            for cid in solved.members
            if not any(nxt != cid and nxt in exists for nxt, _ in children.get(cid, ()))
        ]
        serials = self.reader.leaf_serials(leaves) if leaves else {}
        return {
            "direction": "forward",
            "descendants": solved.closure_lists(),
            "nodes": nodes,
            "edges": edges,
            "leaf_serials": {cid: sorted(serials[cid]) for cid in sorted(serials)},
            "diagnostics": solved.diagnostics,
        }

    # ------------------------------------------------------------------ internals ------
    def _solve(self, container_ids: Sequence[str], query: str, direction: Direction) -> Solved:
        seeds = normalize_ids(container_ids)
        walk = self.reader.walk(query, seeds, direction) if seeds else Walk(direction)
        adjacency = walk.adjacency()
        closures = {
            seed: graph.closure(seed, adjacency, walk.nodes, self.max_depth)
            for seed in seeds
            if seed in walk.seeds
        }
        members = set(closures)
        for found in closures.values():
            if found.depth:
                members.update(found.depth)
        edges = [
            edge
            for edge in walk.edges
            if edge[0] in members and edge[1] in members and edge[0] != edge[1] and edge[2] in STRUCTURAL
        ]
        diagnostics = self._diagnostics(seeds, walk, closures, members, adjacency)
        return Solved(seeds, walk, closures, members, edges, adjacency, diagnostics)

    def _diagnostics(
        self,
        seeds: list[str],
        walk: Walk,
        closures: dict[str, graph.Closure],
        members: set[str],
        adjacency: graph.Adjacency,
    ) -> dict[str, Any]:
        """Cycles among the members, edges to missing containers met within the cap (their
        far end is a parent backward, a child forward), capped and unknown seeds."""
        backward = walk.direction == "backward"
        near, far = ("child_cid", "parent_cid") if backward else ("parent_cid", "child_cid")
        missing = sorted({m for found in closures.values() for m in found.missing})
        return {
            "cycles": graph.cycles(members, adjacency),
            "missing_parents" if backward else "missing_children": [
                {near: node, far: nxt, "edge_type": kind} for node, nxt, kind in missing
            ],
            "depth_capped": sorted(seed for seed, found in closures.items() if found.capped),
            "missing_seeds": sorted(seed for seed in seeds if seed not in walk.seeds),
            "max_depth": self.max_depth,
        }

    def _shape(self, solved: Solved) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
        """Nodes and edges of the answer; a GD lot's original outside the walk is looked up
        (one query, only when there is one)."""
        known, members = solved.walk.nodes, solved.members
        snaps = {cid: snap for cid, snap in known.items() if cid in members}  # the lookup's (id) order
        wanted = {src for src in gd_sources(snaps).values() if src not in snaps}
        extra: dict[str, Snapshot] = {cid: known[cid] for cid in sorted(wanted) if cid in known}
        unknown = sorted(wanted - set(extra) - solved.walk.missing)
        if unknown:
            extra.update(self.reader.containers(unknown))
        return shape_graph(snaps, solved.edges, extra)
