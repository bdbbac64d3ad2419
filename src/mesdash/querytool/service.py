"""Query-tool lookups around one machine: adjacent lots, recent jobs, the machine picker.

Adjacent lots — for each load of the lot (a machine, spec and track-in; partial track-outs
folded: load = MAX(TRACKINQTY), output = SUM(TRACKOUTQTY)) the loads that ran on the same
machine just before and after it, in track-in order. Each side holds at least
``min_each_side`` loads (3) and is extended until it holds the first load of a lot whose
product type (``DW_MES_CONTAINER.PJ_TYPE``) differs from the target lot's; it never holds
more than ``max_each_side`` loads and never looks further than ``window_days`` from the
target's track-in. ``stop`` says why a side ended: ``type_change``, ``max_lots`` or
``window_edge`` (no more candidates in the window).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from mesdash.core.db.query_builder import QueryBuilder, like_escape
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import ValidationFailed

MIN_EACH_SIDE = 3
MAX_EACH_SIDE = 50
WINDOW_DAYS = 7
RECENT_JOB_DAYS = 30
RECENT_JOB_COUNT = 5
PICKER_MAX_ROWS = 200
_ANCHOR_KEY = ("EQUIPMENTID", "ANCHOR_SPECNAME", "ANCHOR_TRACKIN")


def _side(
    loads: Sequence[dict[str, Any]], target: int, step: int, least: int, most: int
) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """The loads on one side of ``target`` (step -1: before, +1: after) and why it ended."""
    product = loads[target]["PJ_TYPE"]
    picked: list[tuple[int, dict[str, Any]]] = []
    changed = False
    index = target + step
    while 0 <= index < len(loads):
        if len(picked) >= most:
            return picked, "max_lots"
        picked.append((step * (len(picked) + 1), loads[index]))
        changed = changed or loads[index]["PJ_TYPE"] != product
        if changed and len(picked) >= least:
            return picked, "type_change"
        index += step
    return picked, "window_edge"


def adjacent_window(
    loads: Sequence[dict[str, Any]], target: int, least: int = MIN_EACH_SIDE, most: int = MAX_EACH_SIDE
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The window rule over one machine's loads in track-in order: rows with
    ``RELATIVE_POSITION`` (0: the target), and the stop reason of each side."""
    before, stop_before = _side(loads, target, -1, least, most)
    after, stop_after = _side(loads, target, +1, least, most)
    rows = [{"RELATIVE_POSITION": pos, **load} for pos, load in reversed(before)]
    rows.append({"RELATIVE_POSITION": 0, **loads[target]})
    rows.extend({"RELATIVE_POSITION": pos, **load} for pos, load in after)
    return rows, {"before": stop_before, "after": stop_after}


def adjacent_lots(
    wh: Warehouse,
    container_id: str,
    *,
    equipment_id: str | None = None,
    spec_name: str | None = None,
    min_each_side: int = MIN_EACH_SIDE,
    max_each_side: int = MAX_EACH_SIDE,
    window_days: int = WINDOW_DAYS,
) -> dict[str, Any]:
    """``{container_id, anchors: [{equipment_id, equipment_name, spec_name, trackin_time,
    product_type, stop, lots}], as_of}`` — one anchor per load of the lot (optionally only
    on ``equipment_id`` / at ``spec_name``), in track-in order."""
    cid = container_id.strip()
    if not cid:
        raise ValidationFailed("container_id: give a container id")
    if not 0 <= min_each_side <= max_each_side:
        raise ValidationFailed("min_each_side must be between 0 and max_each_side")
    qb = QueryBuilder(wh.settings.oracle_in_batch_size)
    if equipment_id:
        qb.add_equals("h.EQUIPMENTID", equipment_id.strip())
    if spec_name:
        qb.add_equals("h.SPECNAME", spec_name.strip())
    sql = wh.sql("querytool/adjacent_loads", anchor_filter=qb.condition_sql())
    as_of = datetime.now()
    rows = wh.read_sql_df_slow(sql, {**qb.params, "container_id": cid, "window_days": window_days}).to_dicts()
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in _ANCHOR_KEY), []).append(row)
    anchors = []
    for (equipment, spec, trackin), loads in groups.items():
        loads.sort(key=lambda r: (r["TRACKINTIMESTAMP"], str(r["CONTAINERID"]), str(r["SPECNAME"])))
        target = next(
            i
            for i, r in enumerate(loads)
            if r["CONTAINERID"] == cid and r["SPECNAME"] == spec and r["TRACKINTIMESTAMP"] == trackin
        )  # the anchor's own load is always a candidate (it is inside its own window)
        window, stop = adjacent_window(loads, target, min_each_side, max_each_side)
        for row in window:
            for key in _ANCHOR_KEY[1:]:
                row.pop(key, None)
        anchors.append(
            {
                "equipment_id": equipment,
                "equipment_name": loads[target]["EQUIPMENTNAME"],
                "spec_name": spec,
                "trackin_time": trackin,
                "product_type": loads[target]["PJ_TYPE"],
                "stop": stop,
                "lots": window,
            }
        )
    anchors.sort(key=lambda a: (a["trackin_time"], str(a["equipment_id"]), str(a["spec_name"])))
    return {
        "container_id": cid,
        "window_rule": {
            "min_each_side": min_each_side,
            "max_each_side": max_each_side,
            "window_days": window_days,
            "product_type_column": "PJ_TYPE",
        },
        "anchors": anchors,
        "as_of": as_of.isoformat(timespec="seconds"),
    }


def recent_jobs(
    wh: Warehouse,
    equipment_id: str,
    *,
    days: int = RECENT_JOB_DAYS,
    limit: int = RECENT_JOB_COUNT,
    as_of: date | None = None,
) -> dict[str, Any]:
    """The newest ``limit`` jobs of a machine created in the ``days`` factory-calendar days
    up to ``as_of`` (default: now)."""
    machine = equipment_id.strip()
    if not machine:
        raise ValidationFailed("equipment_id: give a machine id")
    until = datetime.combine(as_of + timedelta(days=1), time()) if as_of else datetime.now()
    since = until - timedelta(days=days)
    result = wh.read_sql_df(
        wh.sql("querytool/recent_jobs"),
        {"equipment_id": machine, "since": since, "until": until, "max_rows": limit},
    )
    return {
        "equipment_id": machine,
        "since": since.isoformat(timespec="seconds"),
        "until": until.isoformat(timespec="seconds"),
        "data": result.to_dicts(),
        "count": len(result),
    }


def equipment_list(wh: Warehouse, search: str | None = None, limit: int = PICKER_MAX_ROWS) -> dict[str, Any]:
    """Machines for the picker (equipment only), optionally those whose name or work center
    contains ``search``."""
    qb = QueryBuilder(wh.settings.oracle_in_batch_size)
    text = (search or "").strip()
    if text:
        qb.add(
            "UPPER(r.RESOURCENAME) LIKE :search ESCAPE '\\'"
            " OR UPPER(r.WORKCENTERNAME) LIKE :search ESCAPE '\\'",
            search=f"%{like_escape(text.upper())}%",
        )
    result = wh.read_sql_df(
        wh.sql("querytool/equipment", filters=qb.condition_sql()), {**qb.params, "max_rows": limit}
    )
    return {"data": result.to_dicts(), "count": len(result)}
