"""The defect analysis: detection → genealogy → upstream events → attribution, cached.

``analyze`` returns ``{summary, detail}`` for one ``AnalysisParams`` and keeps it under the
request's ``query_id`` (complete results only); ``summary`` is what ``GET …/analysis``
answers, ``detail`` (one row per lot × reason) backs the paged detail and the CSV export.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mesdash.core.cache import LayeredCache, query_hash
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import CacheExpired, ValidationFailed
from mesdash.msd import attribution as attr
from mesdash.msd import detail
from mesdash.msd.detail import DetailBuilder
from mesdash.msd.detection import DetectedLot, Detection, check_station, detect
from mesdash.msd.schemas import AnalysisParams
from mesdash.msd.upstream import LotUpstream, upstream
from mesdash.settings import SCHEMA_VERSION

CACHE_TTL = 900
Stage = Callable[[str, int, int], None]


def query_id_for(params: AnalysisParams) -> str:
    return query_hash(params.hash_params())


def _key(query_id: str) -> str:
    return f"msd:analysis:v{SCHEMA_VERSION}:{query_id}"


def _facts(
    lot: DetectedLot, up: LotUpstream, station: str, shared: dict[attr.Key, attr.Key]
) -> attr.LotFacts:
    facts = attr.LotFacts(
        lot.container_id,
        lot.input_qty,
        dict(lot.reasons),
        {
            "machine": {(name, ident, group) for ident, name, group in up.machines},
            "material": {(mlot, part, group) for part, mlot, group in up.materials},
            "wafer_root": {(w,) for w in up.wafer_roots},
            "workflow": {(lot.workflow,)} if lot.workflow else set(),
            "detection_machine": {(name, ident, station) for ident, name in lot.detection_machines.items()},
        },
    )
    for dimension, keys in facts.values.items():  # one tuple per value across the cohort
        facts.values[dimension] = {shared.setdefault(k, k) for k in keys}
    return facts


def _kpi(cohort: attr.Tally, by_dim: dict[str, dict[attr.Key, attr.Tally]]) -> dict[str, Any]:
    reasons = by_dim["loss_reason"]
    top = max(reasons.items(), key=lambda kv: (kv[1].defect_qty, kv[0]), default=None)
    return {
        "lots": cohort.lots,
        "defective_lots": cohort.defective_lots,
        "input_qty": cohort.input_qty,
        "defect_qty": cohort.defect_qty,
        "defect_rate": attr.rate(cohort.defect_qty, cohort.input_qty),
        "top_reason": top[0][0] if top else None,
        "machines_involved": len(by_dim["machine"]),
    }


def _trend(
    lots: dict[str, DetectedLot], facts: list[attr.LotFacts], reasons: frozenset[str] | None
) -> list[dict[str, Any]]:
    days: dict[str, attr.Tally] = {}
    for f in facts:
        days.setdefault(lots[f.container_id].detection_day, attr.Tally()).add(
            f.input_qty, f.defect_qty(reasons)
        )
    return [
        {
            "day": day,
            "lots": t.lots,
            "defective_lots": t.defective_lots,
            "input_qty": t.input_qty,
            "defect_qty": t.defect_qty,
            "defect_rate": attr.rate(t.defect_qty, t.input_qty),
        }
        for day, t in sorted(days.items())
    ]


DRILL_DOWN_SUSPECTS = 100  # the top suspects whose lots are kept for the drill-down


def _suspect_lots(
    suspects: list[dict[str, Any]], by_dim: dict[str, dict[attr.Key, attr.Tally]], facts: list[attr.LotFacts]
) -> dict[str, list[str]]:
    """``{rank: [container ids]}`` of the top suspects (each value's lots)."""
    keys = {(d, *([*list(k), "", ""])[:3]): k for d, values in by_dim.items() for k in values}
    wanted: dict[tuple[str, attr.Key], str] = {}
    for item in suspects[:DRILL_DOWN_SUSPECTS]:
        ident = (item["dimension"], item["name"], item["id"] or "", item["workcenter_group"] or "")
        wanted[(item["dimension"], keys[ident])] = str(item["rank"])
    out: dict[str, list[str]] = {rank: [] for rank in wanted.values()}
    for f in facts:
        for dimension, values in f.values.items():
            for key in values:
                rank = wanted.get((dimension, key))
                if rank is not None:
                    out[rank].append(f.container_id)
    return out


def suspect_drill_down(query_id: str, rank: int) -> dict[str, Any]:
    """One suspect of a finished analysis: its lots' daily defect rate against the rest."""
    found = cached(query_id)
    suspects = found["summary"]["suspects"]
    if not 1 <= rank <= min(len(suspects), DRILL_DOWN_SUSPECTS):
        raise ValidationFailed(f"rank: between 1 and {min(len(suspects), DRILL_DOWN_SUSPECTS)}")
    members = set(found["suspect_lots"][str(rank)])
    days: dict[tuple[str, bool], attr.Tally] = {}
    for cid, (day, input_qty, defect) in found["lots"].items():
        days.setdefault((day, cid in members), attr.Tally()).add(input_qty, defect)
    series: dict[str, list[dict[str, Any]]] = {"value": [], "rest": []}
    for (day, mine), t in sorted(days.items()):
        series["value" if mine else "rest"].append(
            {
                "day": day,
                "lots": t.lots,
                "defective_lots": t.defective_lots,
                "input_qty": t.input_qty,
                "defect_qty": t.defect_qty,
                "defect_rate": attr.rate(t.defect_qty, t.input_qty),
            }
        )
    return {
        "query_id": query_id,
        "suspect": suspects[rank - 1],
        "daily": series["value"],
        "rest_daily": series["rest"],
        "container_ids": sorted(members),
    }


def compute(wh: Warehouse, params: AnalysisParams, stage: Stage | None = None) -> dict[str, Any]:
    """The whole analysis (no cache)."""
    report = stage or (lambda name, done, total: None)
    orders = check_station(wh, params.station)
    report("detection", 0, 4)
    found: Detection = detect(wh, params)
    ids = sorted(found.lots)
    report("genealogy", 1, 4)
    reasons = frozenset(params.loss_reasons) if params.loss_reasons else None
    shared: dict[attr.Key, attr.Key] = {}
    facts: list[attr.LotFacts] = []
    details = DetailBuilder()
    for cid, up in upstream(wh, ids, orders, params.station):
        facts.append(_facts(found.lots[cid], up, params.station, shared))
        details.add(found.lots[cid], up, reasons)
    report("attribution", 3, 4)
    cohort = attr.cohort_tally(facts, reasons)
    by_dim = attr.tallies(facts, reasons)
    summary: dict[str, Any] = {
        "query_id": query_id_for(params),
        "mode": params.mode,
        "direction": params.direction,
        "station": params.station,
        "start_date": params.start_date,
        "end_date": params.end_date,
        "loss_reasons": params.loss_reasons,
        "min_lots": params.min_lots,
        "kpi": _kpi(cohort, by_dim),
        "charts": {
            attr.CHART_NAMES[d]: attr.pareto(d, by_dim[d], cohort.defect_qty) for d in attr.DIMENSIONS
        },
        "suspects": attr.suspects(by_dim, cohort, params.min_lots),
        "daily_trend": _trend(found.lots, facts, reasons),
        "quality": found.quality,
        "as_of": found.as_of or datetime.now().isoformat(timespec="seconds"),
    }
    if params.direction == "forward":
        from mesdash.msd.forward import forward

        defective = [f.container_id for f in facts if f.defect_qty(reasons) > 0]
        summary["forward"] = forward(wh, params, found.lots, defective, reasons, orders, cohort)
    report("done", 4, 4)
    lots = {
        f.container_id: [found.lots[f.container_id].detection_day, f.input_qty, f.defect_qty(reasons)]
        for f in facts
    }
    return {
        "summary": summary,
        "detail": details.table(),
        "lots": lots,
        "suspect_lots": _suspect_lots(summary["suspects"], by_dim, facts),
    }


def analyze(wh: Warehouse, params: AnalysisParams, stage: Stage | None = None) -> dict[str, Any]:
    """``compute`` through the layered cache under the request's ``query_id``; the detail
    goes to its dataset (``msd.detail``)."""

    def run() -> dict[str, Any]:
        result = compute(wh, params, stage)
        summary = result["summary"]
        detail.store(summary["query_id"], result.pop("detail"), summary["quality"], summary["as_of"])
        return result

    return LayeredCache("").get_or_compute(
        _key(query_id_for(params)),
        run,
        CACHE_TTL,
        cacheable=lambda r: r["summary"]["quality"]["status"] == "complete",
    )


def peek(params: AnalysisParams) -> dict[str, Any] | None:
    """The cached analysis of ``params``, or None (never computes)."""
    found = LayeredCache("").get(_key(query_id_for(params)))
    return dict(found) if found is not None else None


def cached(query_id: str) -> dict[str, Any]:
    """A finished analysis by its ``query_id``; ``CacheExpired`` (410) when gone."""
    found = LayeredCache("").get(_key(query_id))
    if found is None:
        raise CacheExpired(f"analysis {query_id} expired or never ran; run it again")
    return dict(found)
