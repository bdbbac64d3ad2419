"""Node payloads, node types and the semantic (annotation) edges of a genealogy graph.

Closure and depth count ``split_from`` and ``merge_source`` edges only. Two more edge kinds
annotate the graph where the data supports them, without joining any closure:

* ``wafer_origin``: ``wafer:{FIRSTNAME}`` → the node where that wafer lot enters the graph
  (a node none of whose upstream nodes in the graph carries the same FIRSTNAME);
* ``gd_rework_source``: a GD (rework) lot's ``ORIGINALCONTAINERID`` → the GD lot, when the
  original container exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mesdash.lineage.model import GD_REWORK, WAFER, Edge, Snapshot

WAFER_PREFIX = "wafer:"


def node_payload(snap: Snapshot) -> dict[str, Any]:
    return {
        "container_id": snap.container_id,
        "container_name": snap.name or snap.container_id,
        "mfgorder_name": snap.mfgorder,
        "wafer_lot": snap.firstname,
        "node_type": snap.kind,
    }


def wafer_payload(firstname: str) -> dict[str, Any]:
    return {
        "container_id": WAFER_PREFIX + firstname,
        "container_name": firstname,
        "mfgorder_name": None,
        "wafer_lot": firstname,
        "node_type": "WAFER",
    }


def wafer_edges(snaps: Mapping[str, Snapshot], structural: Iterable[Edge]) -> set[Edge]:
    """``wafer:{FIRSTNAME}`` → each node where that wafer lot enters the graph."""
    first = {cid: snap.firstname for cid, snap in snaps.items() if snap.firstname}
    inherited = {target for source, target, _ in structural if first.get(target, 0) == first.get(source)}
    return {(WAFER_PREFIX + name, cid, WAFER) for cid, name in first.items() if cid not in inherited}


def gd_sources(snaps: Mapping[str, Snapshot]) -> dict[str, str]:
    """GD lot → its original container id (when it names another container)."""
    return {
        cid: snap.original_id
        for cid, snap in snaps.items()
        if snap.kind == "GD" and snap.original_id and snap.original_id != cid
    }


def shape_graph(
    snaps: Mapping[str, Snapshot], structural: Iterable[Edge], extra: Mapping[str, Snapshot]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """Nodes (containers, GD originals, wafer lots) and every edge, sorted.

    ``snaps``: the graph's containers; ``extra``: the GD originals outside it (fetched for
    the ``gd_rework_source`` edges)."""
    edges = set(structural)
    edges |= wafer_edges(snaps, edges)
    known = {**extra, **snaps}
    edges |= {(src, gd, GD_REWORK) for gd, src in gd_sources(snaps).items() if src in known}
    nodes = {cid: node_payload(snap) for cid, snap in known.items()}
    for source, _, kind in edges:
        if kind == WAFER:
            nodes[source] = wafer_payload(source[len(WAFER_PREFIX) :])
    payload = [
        {"from_cid": source, "to_cid": target, "edge_type": kind} for source, target, kind in sorted(edges)
    ]
    return {cid: nodes[cid] for cid in sorted(nodes)}, payload  # ids sort faster than items
