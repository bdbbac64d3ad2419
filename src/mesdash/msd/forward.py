"""Forward (containment): where the defective lots and their descendants went after the
detection station, and what they lost there.

Descendants come from the LineageEngine (forward closure). Per station group after the
detection station: lots reached and input from ``upstream_history`` (each container's
latest load per work center and machine), reject qty (charged-off + DEFECTQTY) from
``downstream_rejects``; rate = reject ÷ input; amplification = that rate ÷ the defective
lots' detection rate. The reason matrix counts defective lots by (front reason at
detection, downstream reason met by the lot or a descendant).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.service import resolve_cached
from mesdash.msd import attribution as attr
from mesdash.msd.detection import DetectedLot
from mesdash.msd.schemas import AnalysisParams
from mesdash.trace.events import EventFetcher


def _order(value: Any) -> int:
    text = str(value or "999").strip()
    return int(text) if text.isdigit() else 999


def forward(
    wh: Warehouse,
    params: AnalysisParams,
    lots: Mapping[str, DetectedLot],
    defective: list[str],
    reasons: frozenset[str] | None,
    orders: dict[str, int],
    cohort: attr.Tally,
) -> dict[str, Any]:
    station_order = orders[params.station]
    closure = resolve_cached(wh, defective, "forward")["descendants"] if defective else {}
    seeds_of: dict[str, set[str]] = defaultdict(set)
    for seed in defective:
        for cid in [seed, *closure.get(seed, [])]:
            seeds_of[cid].add(seed)
    members = sorted(seeds_of)
    fetcher = EventFetcher(wh)
    group_lots: dict[str, set[str]] = defaultdict(set)
    group_input: dict[str, float] = defaultdict(float)
    group_order: dict[str, int] = {}
    for grouped in fetcher.fetch_events_iter(members, "upstream_history"):
        for cid, rows in grouped.items():
            for row in rows:
                order = _order(row["WORKCENTER_GROUP_ORDER"])
                group = str(row["WORKCENTER_GROUP"] or "")
                if order > station_order and group:
                    group_order[group] = order
                    group_lots[group].add(cid.strip())
                    group_input[group] += float(row["TRACKINQTY"] or 0)
    group_reject: dict[str, float] = defaultdict(float)
    by_machine: dict[tuple[str, str], float] = defaultdict(float)
    by_reason: dict[str, float] = defaultdict(float)
    met: dict[str, set[str]] = defaultdict(set)  # seed → downstream reasons met
    for grouped in fetcher.fetch_events_iter(members, "downstream_rejects"):
        for cid, rows in grouped.items():
            for row in rows:
                order = _order(row["WORKCENTER_GROUP_ORDER"])
                group = str(row["WORKCENTER_GROUP"] or "")
                qty = float(row["CHARGED_OFF_QTY"] or 0) + float(row["DEFECTQTY"] or 0)
                if order <= station_order or not group or qty <= 0:
                    continue
                group_order[group] = order
                reason = str(row["LOSSREASONNAME"] or "(none)")
                group_reject[group] += qty
                by_machine[(str(row["EQUIPMENTNAME"] or ""), group)] += qty
                by_reason[reason] += qty
                for seed in seeds_of.get(cid.strip(), ()):
                    met[seed].add(reason)
    front_input = sum(lots[s].input_qty for s in defective)
    front_defect = sum(
        sum(q for r, q in lots[s].reasons.items() if reasons is None or r in reasons) for s in defective
    )
    detection_rate = front_defect / front_input if front_input else None
    groups = []
    for group in sorted(group_order, key=lambda g: (group_order[g], g)):
        rate = attr.rate(group_reject[group], group_input[group])
        groups.append(
            {
                "workcenter_group": group,
                "order": group_order[group],
                "lots_reached": len(group_lots[group]),
                "input_qty": group_input[group],
                "reject_qty": group_reject[group],
                "reject_rate": rate,
                "amplification": round(rate / detection_rate, 4)
                if rate is not None and detection_rate
                else None,
            }
        )
    matrix: dict[tuple[str, str], int] = defaultdict(int)
    for seed in defective:
        for front, qty in lots[seed].reasons.items():
            if qty > 0 and (reasons is None or front in reasons):
                for down in met.get(seed, ()):
                    matrix[(front, down)] += 1
    total_input = sum(group_input.values())
    total_reject = sum(group_reject.values())
    down_rate = attr.rate(total_reject, total_input)
    return {
        "defective_lots": len(defective),
        "descendants": len(members) - len(defective),
        "detection_rate": attr.rate(front_defect, front_input),
        "downstream_rate": down_rate,
        "amplification": round(down_rate / detection_rate, 4)
        if down_rate is not None and detection_rate
        else None,
        "by_group": groups,
        "by_machine": [
            {"name": m, "workcenter_group": g, "reject_qty": q}
            for (m, g), q in sorted(by_machine.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "by_reason": [
            {"name": r, "reject_qty": q} for r, q in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "reason_matrix": [
            {"front_reason": f, "downstream_reason": d, "lots": n}
            for (f, d), n in sorted(matrix.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "cohort_lots": cohort.lots,
    }
