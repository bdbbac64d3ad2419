"""The lineage vocabulary: directions, edge kinds, node types and container snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

Direction = Literal["backward", "forward"]
SPLIT = "split_from"
MERGE = "merge_source"
WAFER = "wafer_origin"
GD_REWORK = "gd_rework_source"
STRUCTURAL = (SPLIT, MERGE)
Edge = tuple[str, str, str]  # (from_id upstream, to_id downstream, edge type)


def clean(value: Any) -> str | None:
    """A non-empty, trimmed string or None (CHAR padding and '' are not ids)."""
    if value is None:
        return None
    text = (value if isinstance(value, str) else str(value)).strip()
    return text or None


ORDER_TYPES = ("GD", "GC", "GA")  # checked in this order: a GD rework of a GA lot is GD


def node_type(name: str | None, mfgorder: str | None, objecttype: str | None) -> str:
    """GD / GC / GA by work order (or lot name) prefix, LOT by object type, else UNKNOWN."""
    order, lot = (mfgorder or "")[:2].upper(), (name or "")[:2].upper()
    for prefix in ORDER_TYPES:
        if order == prefix or lot == prefix:
            return prefix
    return "LOT" if (objecttype or "").strip().upper() == "LOT" else "UNKNOWN"


class Snapshot(NamedTuple):
    """The attributes of one container the lineage shows (``kind``: its node type)."""

    container_id: str
    name: str | None
    mfgorder: str | None
    firstname: str | None
    original_id: str | None
    kind: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Snapshot:
        """A ``containers.sql`` row: NODE_ID, CONTAINERNAME, MFGORDERNAME, FIRSTNAME,
        OBJECTTYPE, ORIGINALCONTAINERID (an empty string counts as none)."""
        cid, name, mfgorder, firstname, objecttype, original = row
        name, mfgorder, firstname = name or None, mfgorder or None, firstname or None
        kind = node_type(name, mfgorder, objecttype)
        return cls(cid, name, mfgorder, firstname, original or None, kind)


def snapshots(rows: Iterable[Sequence[Any]]) -> dict[str, Snapshot]:
    """``containers.sql`` rows as snapshots by container id: ``Snapshot.from_row`` in bulk.
    A node type depends on two-letter prefixes and the object type only, so it is worked
    out once per distinct combination (a handful) instead of once a row."""
    kinds: dict[tuple[str, str, Any], str] = {}
    out: dict[str, Snapshot] = {}
    new = tuple.__new__  # a NamedTuple's own __new__ is a Python function: twice the cost
    for cid, name, mfgorder, firstname, objecttype, original in rows:
        name, mfgorder = name or None, mfgorder or None
        key = ((mfgorder or "")[:2], (name or "")[:2], objecttype)
        kind = kinds.get(key)
        if kind is None:
            kind = kinds[key] = node_type(name, mfgorder, objecttype)
        out[cid] = new(Snapshot, (cid, name, mfgorder, firstname or None, original or None, kind))
    return out
