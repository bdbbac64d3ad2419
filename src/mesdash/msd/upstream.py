"""Upstream stage: what each detected lot and its ancestors went through before detection.

Genealogy is the LineageEngine's full backward closure (split and merge edges). Events are
the EventFetcher's ``upstream_history`` and ``materials`` domains for every lot and
ancestor, streamed batch by batch and reduced at once to small per-container sets, kept
only at station groups strictly before the detection station. An ancestor's event counts
for a lot only when it happened before the ancestor's child on the way to that lot
started (its first track-in): a split parent's later steps are not the child's history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.model import STRUCTURAL
from mesdash.lineage.service import resolve_cached
from mesdash.settings import get_settings
from mesdash.trace.events import EventFetcher

Machine = tuple[str, str, str]  # (equipment id, name, station group)
Material = tuple[str, str, str]  # (material part, material lot, station group)


@dataclass
class ContainerEvents:
    """One container's upstream events, reduced to what attribution needs."""

    born: datetime | None = None  # first track-in anywhere
    machines: list[tuple[datetime | None, Machine]] = field(default_factory=list)
    materials: list[tuple[datetime | None, Material]] = field(default_factory=list)


@dataclass
class LotUpstream:
    machines: set[Machine] = field(default_factory=set)
    materials: set[Material] = field(default_factory=set)
    wafer_roots: set[str] = field(default_factory=set)
    ancestors: int = 0


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def _events(
    wh: Warehouse, ids: list[str], orders: dict[str, int], station_order: int
) -> dict[str, ContainerEvents]:
    fetcher = EventFetcher(wh)
    found: dict[str, ContainerEvents] = defaultdict(ContainerEvents)
    shared: dict[tuple[str, str, str], tuple[str, str, str]] = {}  # one object per value
    for grouped in fetcher.fetch_events_iter(ids, "upstream_history"):
        for cid, rows in grouped.items():
            events = found[cid.strip()]
            for row in rows:
                t = _time(row["TRACKINTIMESTAMP"])
                if t is not None and (events.born is None or t < events.born):
                    events.born = t
                order = int(str(row["WORKCENTER_GROUP_ORDER"] or "999").strip() or 999)
                if order < station_order:
                    machine = (
                        str(row["EQUIPMENTID"]).strip(),
                        str(row["EQUIPMENTNAME"] or ""),
                        str(row["WORKCENTER_GROUP"] or ""),
                    )
                    events.machines.append((t, shared.setdefault(machine, machine)))
    for grouped in fetcher.fetch_events_iter(ids, "materials"):
        for cid, rows in grouped.items():
            events = found[cid.strip()]
            for row in rows:
                group = str(row["WORKCENTER_GROUP"] or "")
                if orders.get(group, 999) < station_order:
                    material = (str(row["MATERIALPARTNAME"] or ""), str(row["MATERIALLOTNAME"] or ""), group)
                    events.materials.append((_time(row["TXNDATE"]), shared.setdefault(material, material)))
    return found


def _before(items: Iterable[tuple[datetime | None, Any]], cutoff: datetime | None) -> Iterable[Any]:
    for t, value in items:
        if cutoff is None or t is None or t < cutoff:
            yield value


def _batch(
    wh: Warehouse, lot_ids: list[str], orders: dict[str, int], station: str
) -> Iterator[tuple[str, LotUpstream]]:
    genealogy = resolve_cached(wh, lot_ids, "backward")
    ancestors: dict[str, list[str]] = genealogy["ancestors"]
    nodes: dict[str, dict[str, Any]] = genealogy["nodes"]
    children: dict[str, list[str]] = defaultdict(list)
    for edge in genealogy["edges"]:
        if edge["edge_type"] in STRUCTURAL:
            children[edge["from_cid"]].append(edge["to_cid"])
    del genealogy
    members = list(dict.fromkeys([*lot_ids, *(a for lot in lot_ids for a in ancestors.get(lot, []))]))
    events = _events(wh, members, orders, orders[station])
    empty = ContainerEvents()
    for lot in lot_ids:
        closure = {lot, *ancestors.get(lot, [])}
        found = LotUpstream(ancestors=len(closure) - 1)
        for cid in closure:
            mine = events.get(cid, empty)
            cutoff = None
            if cid != lot:
                borns = [
                    b
                    for c in children.get(cid, ())
                    if c in closure
                    if (b := events.get(c, empty).born) is not None
                ]
                cutoff = max(borns) if borns else None
            found.machines.update(_before(mine.machines, cutoff))
            found.materials.update(_before(mine.materials, cutoff))
            wafer = (nodes.get(cid) or {}).get("wafer_lot")
            if wafer:
                found.wafer_roots.add(str(wafer))
        yield lot, found


def upstream(
    wh: Warehouse, lot_ids: list[str], orders: dict[str, int], station: str, batch_size: int | None = None
) -> Iterator[tuple[str, LotUpstream]]:
    """Per detected lot (in order): upstream machines, materials and wafer lots of it and its
    ancestors. Lots go through in batches of ``MSD_SEED_BATCH_SIZE``: genealogy and events
    of one batch at a time, so memory follows the batch, not the cohort (an ancestor shared
    by lots of two batches is read twice)."""
    size = batch_size or get_settings().msd_seed_batch_size
    for start in range(0, len(lot_ids), size):
        yield from _batch(wh, lot_ids[start : start + size], orders, station)
