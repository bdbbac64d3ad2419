"""Attribution: per dimension value, the detected lots that share it — each (value, lot)
pair counted once, so no value can hold more lots, input or defects than the cohort.

Pure functions over ``LotFacts``; nothing here reads the warehouse. Suspects rank values by
a lot-level one-sided Fisher test (hypergeometric tail) of (defective lots, other lots)
with the value against the rest of the cohort, values with at least ``min_lots`` lots,
sorted by p-value (by its logarithm: exact far below 1e-308) then lift, with a
Benjamini–Hochberg ``q_value`` over all tested values.
A loss-reason filter changes each lot's defect quantity (the numerator), never the cohort.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Key = tuple[str, ...]  # a dimension value: (name, id, workcenter_group)

DIMENSIONS = ("machine", "material", "wafer_root", "workflow", "detection_machine", "loss_reason")
SUSPECT_DIMENSIONS = ("machine", "material", "wafer_root", "workflow", "detection_machine")
CHART_NAMES = {
    "machine": "by_machine",
    "material": "by_material",
    "wafer_root": "by_wafer_root",
    "workflow": "by_workflow",
    "detection_machine": "by_detection_machine",
    "loss_reason": "by_loss_reason",
}


@dataclass
class LotFacts:
    """One detected lot: its input, its defects by reason and its values per dimension."""

    container_id: str
    input_qty: float
    reasons: dict[str, float]
    values: dict[str, set[Key]] = field(default_factory=dict)

    def defect_qty(self, reasons: frozenset[str] | None) -> float:
        if reasons is None:
            return sum(self.reasons.values())
        return sum(q for r, q in self.reasons.items() if r in reasons)


@dataclass
class Tally:
    lots: int = 0
    defective_lots: int = 0
    input_qty: float = 0.0
    defect_qty: float = 0.0

    def add(self, input_qty: float, defect_qty: float) -> None:
        self.lots += 1
        self.input_qty += input_qty
        self.defect_qty += defect_qty
        if defect_qty > 0:
            self.defective_lots += 1


def rate(defect: float, total: float) -> float | None:
    return round(defect / total, 6) if total > 0 else None


def _item(dimension: str, key: Key, t: Tally) -> dict[str, Any]:
    name, ident, group = ([*list(key), "", ""])[:3]
    return {
        "dimension": dimension,
        "name": name,
        "id": ident or None,
        "workcenter_group": group or None,
        "lot_count": t.lots,
        "defective_lots": t.defective_lots,
        "input_qty": t.input_qty,
        "defect_qty": t.defect_qty,
        "defect_rate": rate(t.defect_qty, t.input_qty),
    }


def tallies(lots: Sequence[LotFacts], reasons: frozenset[str] | None) -> dict[str, dict[Key, Tally]]:
    """Per dimension and value: the tally of the lots that carry it (each lot once)."""
    out: dict[str, dict[Key, Tally]] = {d: {} for d in DIMENSIONS}
    for lot in lots:
        defect = lot.defect_qty(reasons)
        for dimension, keys in lot.values.items():
            bucket = out[dimension]
            for key in keys:
                bucket.setdefault(key, Tally()).add(lot.input_qty, defect)
        for reason, qty in lot.reasons.items():
            if (reasons is None or reason in reasons) and qty > 0:
                t = out["loss_reason"].setdefault((reason,), Tally())
                t.lots += 1
                t.defective_lots += 1
                t.input_qty += lot.input_qty
                t.defect_qty += qty
    return out


def pareto(dimension: str, values: dict[Key, Tally], cohort_defect: float) -> list[dict[str, Any]]:
    """Values by defect qty (then lots, name), with the cumulative % of the pareto's total
    and each value's share of the cohort's defects."""
    items = [_item(dimension, k, t) for k, t in values.items()]
    items.sort(key=lambda i: (-i["defect_qty"], -i["lot_count"], i["name"], i["id"] or ""))
    total = sum(i["defect_qty"] for i in items)
    running = 0.0
    for item in items:
        running += item["defect_qty"]
        item["cumulative_pct"] = round(100 * running / total, 2) if total > 0 else None
        item["cohort_share_pct"] = (
            round(100 * item["defect_qty"] / cohort_defect, 2) if cohort_defect > 0 else None
        )
    return items


def suspects(by_dimension: dict[str, dict[Key, Tally]], cohort: Tally, min_lots: int) -> list[dict[str, Any]]:
    """Values whose lots are more often defective than the rest of the cohort's."""
    items = [
        _item(d, k, t) for d in SUSPECT_DIMENSIONS for k, t in by_dimension[d].items() if t.lots >= min_lots
    ]
    if not items:
        return []
    # scipy.stats costs ~0.8 s to import; here only an analysis pays it, not every web or RQ
    # worker's boot (the app imports this module through the MSD router)
    from scipy.stats import false_discovery_control, hypergeom

    n, defective = cohort.lots, cohort.defective_lots
    a = np.array([i["defective_lots"] for i in items])
    k = np.array([i["lot_count"] for i in items])
    log_p = np.minimum(hypergeom.logsf(a - 1, n, defective, k), 0.0)  # exact far below 1e-308
    p = np.exp(log_p)
    q = false_discovery_control(p, method="bh")
    for item, p_value, q_value, lp in zip(items, p, q, log_p, strict=True):
        rest_lots = n - item["lot_count"]
        rest_def = defective - item["defective_lots"]
        share = item["defective_lots"] / item["lot_count"]
        rest_share = rest_def / rest_lots if rest_lots else None
        item["lift"] = round(share / rest_share, 4) if rest_share else None
        item["p_value"] = float(p_value)
        item["q_value"] = float(q_value)
        item["log10_p_value"] = float(lp) / np.log(10)
    items.sort(
        key=lambda i: (
            i["log10_p_value"],
            -(i["lift"] if i["lift"] is not None else float("inf")),
            i["dimension"],
            i["name"],
            i["id"] or "",
        )
    )
    for rank, item in enumerate(items, 1):
        item["rank"] = rank
    return items


def cohort_tally(lots: Iterable[LotFacts], reasons: frozenset[str] | None) -> Tally:
    t = Tally()
    for lot in lots:
        t.add(lot.input_qty, lot.defect_qty(reasons))
    return t
