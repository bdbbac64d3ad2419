"""The equipment list behind the machine pickers (equipment history filters, equipment
jobs), read once and cached for ``MACHINE_LIST_TTL`` seconds."""

from __future__ import annotations

from typing import Any

from mesdash.core.cache.layered import LayeredCache
from mesdash.core.db.warehouse import Warehouse

MACHINE_LIST_TTL = 600.0
FLAGS = {"PJ_ISPRODUCTION": "is_production", "PJ_ISKEY": "is_key", "PJ_ISMONITOR": "is_monitor"}


def _read(wh: Warehouse) -> list[dict[str, Any]]:
    out = []
    for row in wh.read_sql_df(wh.sql("resource/machines")).to_dicts():
        out.append({
            "resource_id": row["RESOURCEID"],
            "machine": row["RESOURCENAME"],
            "family": row["RESOURCEFAMILYNAME"],
            "location": row["LOCATIONNAME"],
            "workcenter": row["WORKCENTERNAME"],
            "workcenter_group": row["WORKCENTER_GROUP"],
            **{name: bool(row[col]) for col, name in FLAGS.items()},
        })
    return out


def equipment(wh: Warehouse) -> list[dict[str, Any]]:
    """Every machine with its dimensions, ordered by name."""
    result: list[dict[str, Any]] = LayeredCache("report").get_or_compute(
        "machines:v1", lambda: _read(wh), MACHINE_LIST_TTL
    )
    return result


def search(wh: Warehouse, text: str = "", limit: int = 200) -> dict[str, Any]:
    """Machines whose name, family or group contains ``text`` (any case), and the choices
    each filter offers."""
    machines = equipment(wh)
    needle = text.strip().lower()
    fields = ("machine", "family", "workcenter_group")
    found = [m for m in machines if not needle or any(needle in str(m[k] or "").lower() for k in fields)]

    def distinct(k: str) -> list[str]:
        return sorted({str(m[k]) for m in machines if m[k]})

    return {
        "total": len(found),
        "machines": found[:limit],
        "options": {
            "workcenter_groups": distinct("workcenter_group"),
            "families": distinct("family"),
            "locations": distinct("location"),
        },
    }
