"""The trace page's genealogy graph: backward and forward lineage of the seeds merged into
one graph with a server-side layered layout (layer = generations from the seeds: ancestors
left, descendants right), collapsed to the ``MAX_NODES`` nodes nearest the seeds."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.service import resolve_cached

MAX_NODES = 500


def _layers(seeds: list[str], edges: list[dict[str, Any]]) -> dict[str, int]:
    """Generation of every reachable node: seeds 0, parents −1, children +1 (first reach wins)."""
    upstream: dict[str, list[str]] = defaultdict(list)
    downstream: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        downstream[edge["from_cid"]].append(edge["to_cid"])
        upstream[edge["to_cid"]].append(edge["from_cid"])
    layer = dict.fromkeys(seeds, 0)
    queue = deque(seeds)
    while queue:
        node = queue.popleft()
        for parent in upstream[node]:
            if parent not in layer and layer[node] <= 0:
                layer[parent] = layer[node] - 1
                queue.append(parent)
        for child in downstream[node]:
            if child not in layer and layer[node] >= 0:
                layer[child] = layer[node] + 1
                queue.append(child)
    return layer


def genealogy_graph(warehouse: Warehouse, seeds: list[str], max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """``{nodes: [{id, name, type, layer, x, y, seed}], edges, node_count, shown, collapsed}``."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for direction in ("backward", "forward"):
        result = resolve_cached(warehouse, seeds, direction)
        nodes.update(result["nodes"])
        for edge in result["edges"]:
            edges[(edge["from_cid"], edge["to_cid"], edge["edge_type"])] = edge
    edge_list = list(edges.values())
    layer = _layers([s for s in seeds if s in nodes], edge_list)
    ranked = sorted(layer, key=lambda n: (abs(layer[n]), nodes[n]["container_name"]))
    kept = set(ranked[:max_nodes])
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node in sorted(kept, key=lambda n: nodes[n]["container_name"]):
        by_layer[layer[node]].append(node)
    shown = []
    for depth, members in sorted(by_layer.items()):
        for row, node in enumerate(members):
            info = nodes[node]
            shown.append({
                "id": node, "name": info["container_name"], "type": info["node_type"],
                "work_order": info.get("mfgorder_name"), "layer": depth,
                "x": depth, "y": row - (len(members) - 1) / 2, "seed": depth == 0 and node in seeds,
            })
    return {
        "nodes": shown,
        "edges": [e for e in edge_list if e["from_cid"] in kept and e["to_cid"] in kept],
        "node_count": len(layer),
        "shown": len(shown),
        "collapsed": len(layer) > len(shown),
    }
