"""Pure graph work over what a walk fetched: per-seed closures, cycles, roots.

The warehouse walk returns the union of every seed's neighbourhood (one level past the
depth cap); the per-seed answer is a breadth-first search over that in memory, so the
shortest path decides membership: a node reached by a short path is in even when a long
detour reaches it too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

Adjacency = Mapping[str, list[tuple[str, str]]]  # node → [(next node, edge type)]


@dataclass
class Closure:
    """One seed's closure: node → shortest depth (the seed itself is not in it)."""

    depth: dict[str, int]
    capped: bool  # a node at the cap has a neighbour the cap left out
    missing: set[tuple[str, str, str]]  # (node, missing neighbour, edge type) met on the way


def closure(seed: str, adjacency: Adjacency, exists: Collection[str], max_depth: int) -> Closure:
    """Breadth-first search from ``seed`` over existing nodes, at most ``max_depth`` edges."""
    if not adjacency.get(seed):  # most seeds of a large request: nothing upstream
        return Closure({}, False, set())
    seen = {seed: 0}
    missing: set[tuple[str, str, str]] = set()
    frontier = [seed]
    following: list[str]
    level = 0
    while frontier and level < max_depth:  # most closures end long before the cap
        level += 1
        following = []
        for node in frontier:
            for nxt, kind in adjacency.get(node, ()):
                if nxt in seen:
                    continue
                if nxt not in exists:
                    missing.add((node, nxt, kind))
                    continue
                seen[nxt] = level
                following.append(nxt)
        frontier = following
    capped = any(nxt not in seen and nxt in exists for node in frontier for nxt, _ in adjacency.get(node, ()))
    del seen[seed]
    return Closure(seen, capped, missing)


def cycles(nodes: Iterable[str], adjacency: Adjacency) -> list[list[str]]:
    """Strongly connected components with more than one node, and self-loops, among
    ``nodes`` (edges leaving the set are ignored); each sorted, the list sorted.

    Tarjan runs only over the nodes that can be on a cycle: first the nodes that cannot
    reach one (no successor left once such nodes are removed) are peeled off, which in a
    genealogy is nearly all of them."""
    succ = _cycle_candidates(set(nodes), adjacency)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in succ:
        if start in index:
            continue
        work = [(start, 0)]
        while work:  # iterative Tarjan: (node, next successor position)
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if pos < len(succ[node]):
                work.append((node, pos + 1))
                nxt = succ[node][pos]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in succ[node]:
                    found.append(sorted(component))  # the search order does not matter
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found)


def _cycle_candidates(members: set[str], adjacency: Adjacency) -> dict[str, list[str]]:
    """Successors among ``members`` of the members that reach a cycle (Kahn's peeling of
    the nodes whose successors all lead nowhere: they are on no cycle)."""
    succ: dict[str, list[str]] = {}
    pairs: Iterable[tuple[str, list[tuple[str, str]] | None]]
    if len(adjacency) < len(members):  # a genealogy: most members have no successor at all
        pairs = ((node, following) for node, following in adjacency.items() if node in members)
    else:
        pairs = ((node, adjacency.get(node)) for node in members)
    for node, following in pairs:
        if following:
            inside = [m for m, _ in following if m in members]
            if inside:
                succ[node] = inside
    left = {node: len(inside) for node, inside in succ.items()}  # successors not peeled
    preds: dict[str, list[str]] = {}
    for node, inside in succ.items():
        for m in inside:
            preds.setdefault(m, []).append(node)
    peeled = [node for node in preds if node not in succ]  # sinks
    while peeled:
        for pred in preds.get(peeled.pop(), ()):
            left[pred] -= 1
            if not left[pred]:
                del left[pred]
                peeled.append(pred)
    return {node: [m for m in succ[node] if m in left] for node in left}


def roots(members: Collection[str], parents: Adjacency, depth: Mapping[str, int]) -> list[str]:
    """Nodes of ``members`` with no parent inside ``members``; when every node has one (a
    pure cycle), the farthest nodes."""
    top = []
    for n in members:
        for p, _ in parents.get(n, ()):
            if p != n and p in members:
                break
        else:
            top.append(n)
    if top:
        return top
    farthest = max(depth.get(n, 0) for n in members)
    return [n for n in members if depth.get(n, 0) == farthest]
