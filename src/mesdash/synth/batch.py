"""One batch of work orders: simulate its lots, then build every lot table from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mesdash.synth import catalog as cat
from mesdash.synth import events as ev
from mesdash.synth.context import Ctx
from mesdash.synth.equipment import Equipment
from mesdash.synth.flow import (
    FLAG_FORWARD,
    FLAG_MACHINE,
    FLAG_MATERIAL,
    FLAG_WAFER,
    KIND_GD,
    KIND_ROOT,
    TEST_FLAGS,
    Excursions,
    Sim,
)
from mesdash.synth.genealogy import Genealogy
from mesdash.synth.orders import Orders

DAY = 86_400
FLAGS = {"machine": FLAG_MACHINE, "material": FLAG_MATERIAL, "wafer": FLAG_WAFER}


@dataclass
class Tally:
    """What the manifest reports about lots and excursions, summed over batches."""

    exposed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    affected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    test_qty: dict[str, list[float]] = field(
        default_factory=lambda: {k: [0.0, 0.0] for k in [*FLAGS, "baseline"]})
    lots: dict[str, int] = field(default_factory=dict)
    lineage: dict[str, object] = field(default_factory=dict)
    # the forward case: flagged containers, those that reached plating, and (lost, load) at
    # molding and at plating for flagged steps, at plating for the others
    forward: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ["exposed", "reached", "front_bad", "front_load", "down_bad", "down_load",
         "base_bad", "base_load"], 0.0))

    def count(self, sim: Sim) -> None:
        s = sim.state
        tested = s["done_group"] == cat.TEST
        for key, bit in FLAGS.items():
            has = (s["flags"] & bit) > 0
            self.exposed[key] += int(has.sum())
            self.affected[key] += int((has & tested).sum())
        st = sim.table("steps")
        test = st["group"] == cat.TEST
        bad = st["charged"] + st["defect"]
        for key, bit in [*FLAGS.items(), ("baseline", 0)]:
            sel = test & (((st["flags"] & bit) > 0) if bit else ((st["flags"] & TEST_FLAGS) == 0))
            self.test_qty[key][0] += float(bad[sel].sum())
            self.test_qty[key][1] += float(st["load"][sel].sum())
        fwd = self.forward
        flagged = ((st["flags"] & FLAG_FORWARD) > 0) & (s["kind"][st["cont"]] != KIND_GD)
        fwd["exposed"] += int(((s["flags"] & FLAG_FORWARD) > 0).sum())
        for prefix, group, sel in (("front", cat.FORWARD_GROUP, flagged),
                                   ("down", cat.FORWARD_DOWN_GROUP, flagged),
                                   ("base", cat.FORWARD_DOWN_GROUP, ~flagged)):
            at = (st["group"] == group) & sel
            fwd[f"{prefix}_bad"] += float(bad[at].sum())
            fwd[f"{prefix}_load"] += float(st["load"][at].sum())
        fwd["reached"] += len(np.unique(st["cont"][(st["group"] == cat.FORWARD_DOWN_GROUP) & flagged]))

    def forward_rate(self, prefix: str) -> float | None:
        bad, load = self.forward[f"{prefix}_bad"], self.forward[f"{prefix}_load"]
        return round(bad / load, 6) if load else None

    def rate(self, key: str) -> float | None:
        bad, load = self.test_qty[key]
        return round(bad / load, 6) if load else None


def simulate(ctx: Ctx, orders: Orders, w0: int, w1: int, exc: Excursions,
             rng: np.random.Generator, planted_rng: np.random.Generator | None = None) -> Sim:
    sim = Sim(rng, ctx.machines, ctx.products.route, exc, ctx.span_end, planted_rng)
    counts = orders.lot_count[w0:w1]
    wo = np.repeat(np.arange(w0, w1), counts)
    _, lot_no = ev.expand(counts)
    n_wafer = np.diff(orders.wafer_start)[wo]
    wafer = orders.wafer_start[wo] + (rng.random(len(wo)) * n_wafer).astype(np.int64)
    release = np.minimum(orders.release[wo] + rng.integers(0, 12 * 3600, len(wo)), ctx.span_end - 1)
    qty = rng.integers(20, 180, len(wo)) * 960
    roots = sim.add(kind=np.full(len(wo), KIND_ROOT), wo=wo, product=orders.product[wo],
                    wafer=wafer, lot_no=lot_no + 1, qty0=qty, start_group=np.zeros(len(wo)),
                    t=release, q=qty, born=release,
                    flags=np.where(wafer == exc.wafer, FLAG_WAFER, 0))
    sim.plan_splits(roots, 0.25, 0)
    sim.run(0)
    s = sim.state
    done = np.nonzero((s["done_group"] == cat.TEST) & (rng.random(sim.n) < 0.025))[0]
    start = s["t"][done] + rng.integers(DAY, 5 * DAY, len(done))
    done, start = done[start < ctx.span_end - 2 * DAY], start[start < ctx.span_end - 2 * DAY]
    if len(done):
        gd_qty = np.maximum(100, (s["q"][done] * rng.uniform(0.05, 0.3, len(done))).astype(np.int64))
        sim.add(kind=np.full(len(done), KIND_GD), original=done, wo=s["wo"][done],
                product=s["product"][done], wafer=s["wafer"][done], lot_no=s["lot_no"][done],
                qty0=gd_qty, start_group=np.full(len(done), 7), t=start, q=gd_qty, born=start,
                flags=s["flags"][done])
        sim.run(7)
    return sim


def batch_tables(ctx: Ctx, orders: Orders, w0: int, w1: int, sim: Sim, gen: Genealogy,
                 equipment: Equipment, rng: np.random.Generator,
                 first: bool, chains: int) -> Iterator[tuple[str, pa.Table]]:
    gen.sim_lots()
    gen.oddities(first, chains)
    gen.merges()
    gen.wafers(w0, w1)
    mat = gen.material_lots(w0, w1)
    lots = gen.lots()
    yield "DW_MES_CONTAINER", gen.container_table(lots)
    st = sim.table("steps")
    st_all = {k: np.concatenate([st[k], mat[k]]) for k in st}
    yield "DW_MES_LOTWIPHISTORY", ev.wip_history(ctx, lots, st_all, rng)
    store = cat.all_workcenters().index(cat.STORE_WORKCENTER)
    for cont, spec, t, qty in gen.checkpoints:
        wc = np.where(spec == ctx.end_spec[cat.TEST], ctx.main_wc[cat.TEST], store)
        yield "DW_MES_LOTWIPHISTORY", ev.checkpoints(ctx, lots, cont, spec, wc, t, qty)
    yield "DW_MES_LOTREJECTHISTORY", ev.rejects(ctx, lots, st_all, rng)
    yield "DW_MES_LOTMATERIALSHISTORY", ev.materials(ctx, lots, st, rng)
    yield "DW_MES_HOLDRELEASEHISTORY", ev.holds(ctx, lots, sim.table("holds"), rng)
    for table in gen.combined:
        yield "DW_MES_PJ_COMBINEDASSYLOTS", table
    yield "DW_MES_HM_LOTMOVEOUT", ev.step_moveouts(ctx, lots, st_all, rng)
    sp = sim.table("splits")
    yield "DW_MES_HM_LOTMOVEOUT", ev.moveouts(ctx, lots, sp["child"], sp["parent"], sp["qty"],
                                              sp["t"], "SplitLot", "LotSplit")
    for cont, src, qty, t, cdo, caller in gen.moveouts:
        yield "DW_MES_HM_LOTMOVEOUT", ev.moveouts(ctx, lots, cont, src, qty, t, cdo, caller)
    jobs, txns = equipment.repair_jobs(lots, st_all, rng)
    yield "DW_MES_JOB", jobs
    yield "DW_MES_JOBTXNHISTORY", txns
