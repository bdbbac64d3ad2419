"""``generate``: a seeded synthetic fab written into the warehouse tables, plus a manifest
of what was planted (excursions, lineage oddities) and how many rows each table got."""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from mesdash.core.factory_day import day_of, day_start
from mesdash.synth import catalog as cat
from mesdash.synth.arrow import hex16
from mesdash.synth.batch import FLAGS, Tally, batch_tables, simulate
from mesdash.synth.context import Ctx, Ids
from mesdash.synth.dims import (
    SCALES,
    Scale,
    carrier_ids,
    exclude_table,
    make_machines,
    make_products,
    resource_table,
    spec_table,
)
from mesdash.synth.equipment import Equipment
from mesdash.synth.events import material_lot_name
from mesdash.synth.flow import HOUR, Excursions, material_lot_index
from mesdash.synth.genealogy import Genealogy
from mesdash.synth.manifest import write_manifest
from mesdash.synth.orders import Orders, make_orders
from mesdash.synth.sink import open_sink

Progress = Callable[[str, int, int], None]
DAY = 86_400
MEMORY_LIMIT = "1500MB"


def generate(warehouse: Any, scale: str = "demo", seed: int = 1, end_date: date | None = None,
             progress: Progress | None = None) -> dict[str, Any]:
    """Fill every ``dwh`` table; the same (scale, seed, end_date) gives the same rows."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    sc = SCALES[scale]
    # Default: the last complete factory day, so no event lies in the future of a demo.
    end_date = end_date or day_of(datetime.now()) - timedelta(days=1)
    started = _time.monotonic()
    first_day = end_date - timedelta(days=sc.days - 1)
    t0 = day_start(first_day)
    products = make_products(np.random.default_rng([seed, 0]))
    machines = make_machines(np.random.default_rng([seed, 1]), sc)
    orders = make_orders(np.random.default_rng([seed, 2]), t0, sc.days, sc.roots, products.n)
    ctx = Ctx(t0, sc.days * DAY, Ids(), products, machines)
    exc = _excursions(np.random.default_rng([seed, 3]), ctx, orders)
    equipment = Equipment(ctx, sc.days * 2)
    tally = Tally()
    counts: dict[str, int] = {}
    report = progress or (lambda stage, done, total: None)

    with open_sink(warehouse, MEMORY_LIMIT) as sink:
        def put(name: str, table: Any) -> None:
            counts[name] = counts.get(name, 0) + table.num_rows
            sink.write(name, table)

        put("DW_MES_RESOURCE", resource_table(np.random.default_rng([seed, 4]), machines, sc))
        put("DW_MES_SPEC_WORKCENTER_V", spec_table())
        put("ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE", exclude_table())
        _lots(ctx, orders, exc, equipment, tally, sc, seed, put, report)
        report("equipment", 0, 1)
        rng = np.random.default_rng([seed, 5])
        jobs, txns = equipment.pm_jobs(rng)
        put("DW_MES_JOB", jobs)
        put("DW_MES_JOBTXNHISTORY", txns)
        for table in equipment.status_tables(rng, carrier_ids(sc)):
            put("DW_MES_RESOURCESTATUS_SHIFT", table)
        report("equipment", 1, 1)
        report("indexes", 0, 1)
    report("indexes", 1, 1)

    manifest = {
        "scale": scale,
        "seed": seed,
        "end_date": end_date.isoformat(),
        "start_date": first_day.isoformat(),
        "days": sc.days,
        "dialect": warehouse.dialect,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "generation_seconds": round(_time.monotonic() - started, 1),
        "row_counts": {name: counts.get(name, 0) for name in _TABLES},
        "lots": tally.lots,
        "machines": int(machines.production.sum()),
        "excursions": _describe(ctx, exc, tally, orders),
        "lineage": tally.lineage,
    }
    write_manifest(warehouse, manifest)
    return manifest


_TABLES = [
    "DW_MES_CONTAINER", "DW_MES_LOTWIPHISTORY", "DW_MES_LOTREJECTHISTORY",
    "DW_MES_LOTMATERIALSHISTORY", "DW_MES_HOLDRELEASEHISTORY", "DW_MES_PJ_COMBINEDASSYLOTS",
    "DW_MES_HM_LOTMOVEOUT", "DW_MES_JOB", "DW_MES_JOBTXNHISTORY", "DW_MES_RESOURCE",
    "DW_MES_RESOURCESTATUS_SHIFT", "DW_MES_SPEC_WORKCENTER_V", "ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE",
]


def _lots(ctx: Ctx, orders: Orders, exc: Excursions, equipment: Equipment, tally: Tally,
          sc: Scale, seed: int, put: Callable[[str, Any], None], report: Progress) -> None:
    batches = orders.batches(sc.batch_roots)
    gd_seq: dict[int, int] = {}
    finished_seq = [0]
    for b, (w0, w1) in enumerate(batches):
        rng = np.random.default_rng([seed, 10, b])
        sim = simulate(ctx, orders, w0, w1, exc, rng, np.random.default_rng([seed, 11, b]))
        tally.count(sim)
        gen = Genealogy(ctx, orders, sim, rng, gd_seq, finished_seq)
        for name, table in batch_tables(ctx, orders, w0, w1, sim, gen, equipment, rng,
                                        b == 0, sc.chains):
            put(name, table)
        _merge_lineage(tally, gen.lineage)
        for key, value in gen.counts.items():
            tally.lots[key] = tally.lots.get(key, 0) + value
        report("lots", b + 1, len(batches))


def _merge_lineage(tally: Tally, info: dict[str, Any]) -> None:
    for key, value in info.items():
        if isinstance(value, list):
            current = tally.lineage.setdefault(key, [])
            assert isinstance(current, list)
            current.extend(value[: max(0, 20 - len(current))] if key != "chains" else value)
        else:
            tally.lineage[key] = int(tally.lineage.get(key, 0)) + int(value)  # type: ignore[call-overload]


def _excursions(rng: np.random.Generator, ctx: Ctx, orders: Orders) -> Excursions:
    span = ctx.span_end
    wb = ctx.machines.by_group[cat.WB]
    machine = int(wb[rng.integers(0, len(wb))])
    start = int(span * 0.45) // DAY * DAY
    window = (start, start + 21 * DAY)
    material_lot = int(material_lot_index(cat.EXCURSION_MATERIAL, np.array([0]),
                                          np.array([int(span * 0.62)]))[0])
    lo, hi = np.searchsorted(orders.release, [span * 0.25, span * 0.35])
    wo = int(lo + np.argmax(orders.lot_count[lo:max(hi, lo + 1)]))
    molding = ctx.machines.by_group[cat.FORWARD_GROUP]
    forward_machine = int(molding[rng.integers(0, len(molding))])  # drawn last: the others stay
    forward_start = int(span * 0.75) // DAY * DAY
    return Excursions(machine=machine, window=window, material_lot=material_lot,
                      wafer=int(orders.wafer_start[wo]), forward_machine=forward_machine,
                      forward_window=(forward_start, forward_start + 14 * DAY))


def _describe(ctx: Ctx, exc: Excursions, tally: Tally, orders: Orders) -> list[dict[str, Any]]:
    m = ctx.machines
    t = np.datetime64(ctx.t0, "s")

    def stamp(sec: int) -> str:
        return str(t + np.timedelta64(int(sec), "s")).replace("T", " ")

    common = {"detect_group": cat.GROUP_NAMES[cat.TEST]}
    part = cat.MATERIALS[cat.EXCURSION_MATERIAL]
    dur = int(part.lot_hours * HOUR)
    db = ctx.machines.by_group[part.group]
    lot_lo = exc.material_lot * dur - 30 * DAY - m.offset[db]
    out = [
        {"kind": "machine", "resource_id": hex16(m.ids[[exc.machine]]).to_pylist()[0],
         "resource_name": m.names[exc.machine], "station_group": cat.GROUP_NAMES[cat.WB],
         "work_center": cat.all_workcenters()[m.workcenter[exc.machine]],
         "window": {"start": stamp(exc.window[0]), "end": stamp(exc.window[1])},
         "factor": exc.machine_factor, "downstream_factor": exc.downstream_factor,
         "downstream_groups": cat.GROUP_NAMES[cat.WB + 1:cat.TEST],
         "description": "lots tracked in on this machine inside the window (and split children "
                        "made after it) fail final test more often and lose more downstream"},
        {"kind": "material", "material_part": part.part,
         "material_lot": material_lot_name(cat.EXCURSION_MATERIAL, exc.material_lot),
         "station_group": cat.GROUP_NAMES[part.group],
         "window": {"start": stamp(int(lot_lo.min())), "end": stamp(int(lot_lo.max()) + dur)},
         "factor": exc.material_factor,
         "description": "lots that consumed this material lot fail final test more often"},
        {"kind": "wafer", "wafer_lot": orders.wafer_names[exc.wafer], "factor": exc.wafer_factor,
         "station_group": cat.GROUP_NAMES[0],
         "description": "lots cut from this wafer lot (FIRSTNAME) fail final test more often"},
    ]
    for item in out:
        key = str(item["kind"])
        item.update(common)
        item["affected_lots"] = tally.affected[key]
        item["exposed_lots"] = tally.exposed[key]
        item["defect_rate_affected"] = tally.rate(key)
        item["defect_rate_baseline"] = tally.rate("baseline")
    assert set(FLAGS) == {str(i["kind"]) for i in out}
    fwd = tally.forward
    out.append(
        {"kind": "forward", "resource_id": hex16(m.ids[[exc.forward_machine]]).to_pylist()[0],
         "resource_name": m.names[exc.forward_machine],
         "station_group": cat.GROUP_NAMES[cat.FORWARD_GROUP],
         "work_center": cat.all_workcenters()[m.workcenter[exc.forward_machine]],
         "window": {"start": stamp(exc.forward_window[0]), "end": stamp(exc.forward_window[1])},
         "detect_group": cat.GROUP_NAMES[cat.FORWARD_GROUP],
         "front_reason": cat.FORWARD_FRONT_REASON, "front_share": exc.forward_front,
         "downstream_group": cat.GROUP_NAMES[cat.FORWARD_DOWN_GROUP],
         "downstream_reason": cat.FORWARD_DOWN_REASON, "downstream_share": exc.forward_down,
         "exposed_lots": int(fwd["exposed"]), "affected_lots": int(fwd["reached"]),
         "front_rate_affected": tally.forward_rate("front"),
         "downstream_rate_affected": tally.forward_rate("down"),
         "downstream_rate_baseline": tally.forward_rate("base"),
         "description": "lots molded on this machine inside the window (and split children made "
                        "after it) lose units to voids at molding and many more to plating "
                        "defects downstream: forward analysis from molding amplifies at plating"})
    return out
