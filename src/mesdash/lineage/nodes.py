"""Node payloads, node types and the semantic (annotation) edges of a genealogy graph.

Closure and depth count ``split_from`` and ``merge_source`` edges only. Two more edge kinds
annotate the graph where the data supports them, without joining any closure:

* ``wafer_origin``: ``wafer:{FIRSTNAME}`` → the node where that wafer lot enters the graph
  (a node none of whose upstream nodes in the graph carries the same FIRSTNAME);
* ``gd_rework_source``: a GD (rework) lot's ``ORIGINALCONTAINERID`` → the GD lot, when the
  original container exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from mesdash.lineage.model import GD_REWORK, WAFER, Edge, Snapshot

WAFER_PREFIX = "wafer:"


def wafer_payload(firstname: str) -> dict[str, Any]:
    return {
        "container_id": WAFER_PREFIX + firstname,
        "container_name": firstname,
        "mfgorder_name": None,
        "wafer_lot": firstname,
        "node_type": "WAFER",
    }


def wafer_edges(snaps: Mapping[str, Snapshot], structural: Iterable[Edge]) -> list[Edge]:
    """``wafer:{FIRSTNAME}`` → each node where that wafer lot enters the graph, sorted by
    wafer lot (and by node within one when ``snaps`` come in id order)."""
    first = {cid: firstname for cid, _, _, firstname, _, _ in snaps.values() if firstname}
    inherited = {target for source, target, _ in structural if first.get(target, 0) == first.get(source)}
    entries = [(WAFER_PREFIX + name, cid, WAFER) for cid, name in first.items() if cid not in inherited]
    entries.sort(key=itemgetter(0))  # stable: keeps the node order within a wafer lot
    return entries


def gd_sources(snaps: Mapping[str, Snapshot]) -> dict[str, str]:
    """GD lot → its original container id (when it names another container)."""
    return {
        cid: snap.original_id
        for cid, snap in snaps.items()
        if snap.kind == "GD" and snap.original_id and snap.original_id != cid
    }


def shape_graph(
    snaps: Mapping[str, Snapshot], structural: Sequence[Edge], extra: Mapping[str, Snapshot]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """Nodes (containers, GD originals, wafer lots) and every edge, sorted.

    ``snaps``: the graph's containers; ``structural``: their split and merge edges (no
    duplicates); ``extra``: the GD originals outside the graph (fetched for the
    ``gd_rework_source`` edges). The sorts are the result's order whatever the input's;
    when ``snaps``, ``extra`` and ``structural`` come sorted (the queries order their rows)
    they only merge a few sorted runs, which costs a tenth of sorting shuffled ids."""
    wafers = wafer_edges(snaps, structural)
    known = {**extra, **snaps}
    reworks = sorted((src, gd, GD_REWORK) for gd, src in gd_sources(snaps).items() if src in known)
    nodes = {  # one payload per container: written out, this runs for tens of thousands
        cid: {
            "container_id": cid,
            "container_name": name or cid,
            "mfgorder_name": mfgorder,
            "wafer_lot": firstname,
            "node_type": kind,
        }
        for cid, name, mfgorder, firstname, _, kind in known.values()
    }
    for source in dict.fromkeys(source for source, _, _ in wafers):
        nodes[source] = wafer_payload(source[len(WAFER_PREFIX) :])
    edges = sorted([*structural, *wafers, *reworks])
    payload = [{"from_cid": source, "to_cid": target, "edge_type": kind} for source, target, kind in edges]
    return {cid: nodes[cid] for cid in sorted(nodes)}, payload
