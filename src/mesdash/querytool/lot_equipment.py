"""Lot → equipment: every machine the lots ran on, per station group (step).

Lots come from lot names or work orders (``trace.resolve``). A split child carries no
history of the steps its parent ran before the split, so a step the lot has no own history
at is taken from its split parents (``lineage``: ``SPLITFROMID``, up to ``FALLBACK_DEPTH``
levels), nearest first. An ancestor's step counts only when it began before the
descendant's first own track-in (the split happened then, so later steps of the parent are
not the child's). Each row says where it came from: ``SOURCE_CONTAINERID`` and
``SOURCE_DEPTH`` (0 = the lot's own history).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.service import LineageEngine
from mesdash.lineage.walks import ORACLE_IDS_PER_STATEMENT, chunks, id_condition
from mesdash.trace.resolve import resolve_lots

FALLBACK_DEPTH = 10


def _parent_chain(seed: str, child_to_parent: dict[str, str], depth: int) -> list[str]:
    """Split parent, grandparent, … of ``seed``: at most ``depth``, never a node twice."""
    chain: list[str] = []
    node = seed
    while len(chain) < depth:
        parent = child_to_parent.get(node)
        if parent is None or parent == seed or parent in chain:
            break
        chain.append(parent)
        node = parent
    return chain


def machine_rows(wh: Warehouse, container_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """``lot_equipment.sql`` rows of the lots, grouped by CONTAINERID (set-at-a-time)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for batch in chunks(list(container_ids), ORACLE_IDS_PER_STATEMENT):
        qb = QueryBuilder(wh.settings.oracle_in_batch_size)
        condition = id_condition(qb, wh.dialect, "h.CONTAINERID", batch)
        result = wh.read_sql_df_slow(wh.sql("querytool/lot_equipment", cid_filter=condition), qb.params)
        for row in result.to_dicts():
            found.setdefault(row["CONTAINERID"], []).append(row)
    return found


def _first_trackin(rows: Sequence[dict[str, Any]]) -> datetime | None:
    return min((r["FIRST_TRACKIN"] for r in rows), default=None)


def fold_with_parents(
    seed: str, chain: Sequence[str], rows: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The seed's own rows, plus for each step it lacks the rows of its nearest ancestor
    that ran that step before the split (see the module docstring)."""
    own = rows.get(seed, [])
    out = [{**r, "SOURCE_CONTAINERID": seed, "SOURCE_DEPTH": 0} for r in own]
    covered = {r["WORKCENTER_GROUP"] for r in own}
    cutoff = _first_trackin(own)
    for depth, ancestor in enumerate(chain, start=1):
        theirs = rows.get(ancestor, [])
        eligible = [r for r in theirs if cutoff is None or r["FIRST_TRACKIN"] < cutoff]
        new_steps = {r["WORKCENTER_GROUP"] for r in eligible} - covered
        out.extend(
            {**r, "CONTAINERID": seed, "SOURCE_CONTAINERID": ancestor, "SOURCE_DEPTH": depth}
            for r in eligible
            if r["WORKCENTER_GROUP"] in new_steps
        )
        covered |= new_steps
        first = _first_trackin(theirs)
        if first is not None:
            cutoff = first if cutoff is None else min(cutoff, first)
    return out


def lot_equipment(
    wh: Warehouse, input_type: str, values: Sequence[str], workcenter_groups: Sequence[str] = ()
) -> dict[str, Any]:
    """``{data: [row], lots: [resolved lot], not_found, diagnostics}``; a row is (lot,
    station group, machine) with ``FIRST_TRACKIN``, ``LAST_TRACKOUT``, ``LOADS`` and its
    source, ordered by lot (input order), group order, first track-in."""
    resolved = resolve_lots(wh, input_type, values)
    seeds = [lot["container_id"] for lot in resolved["data"]]
    names = {lot["container_id"]: lot["lot_id"] for lot in resolved["data"]}
    split = LineageEngine(wh, max_depth=FALLBACK_DEPTH).resolve_split_ancestors(seeds) if seeds else {}
    parents: dict[str, str] = split.get("child_to_parent", {})
    chains = {seed: _parent_chain(seed, parents, FALLBACK_DEPTH) for seed in seeds}
    wanted = list(dict.fromkeys([*seeds, *(a for chain in chains.values() for a in chain)]))
    rows = machine_rows(wh, wanted) if wanted else {}
    groups = set(workcenter_groups)
    data: list[dict[str, Any]] = []
    for seed in seeds:
        folded = fold_with_parents(seed, chains[seed], rows)
        if groups:
            folded = [r for r in folded if r["WORKCENTER_GROUP"] in groups]
        folded.sort(
            key=lambda r: (str(r["WORKCENTER_GROUP_ORDER"]), r["FIRST_TRACKIN"], str(r["EQUIPMENTID"]))
        )
        data.extend({"CONTAINERNAME": names[seed], **r} for r in folded)
    return {
        "data": data,
        "count": len(data),
        "lots": resolved["data"],
        "not_found": resolved["not_found"],
        "diagnostics": {
            "fallback_depth": FALLBACK_DEPTH,
            "depth_capped": split.get("diagnostics", {}).get("depth_capped", []),
            "lots_using_parents": sorted({r["CONTAINERID"] for r in data if r["SOURCE_DEPTH"] > 0}),
        },
    }
