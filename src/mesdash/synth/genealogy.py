"""A batch's containers: names and genealogy (splits, GD rework, merges into finished lots,
wafer-lot and material containers) plus the planted oddities real data holds — split
self-references, cycles, chains deeper than 20 and parents that do not exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mesdash.synth import catalog as cat
from mesdash.synth.arrow import build_table, floats, hex16, timestamps
from mesdash.synth.context import Ctx, Lots
from mesdash.synth.flow import KIND_CHILD, KIND_GD, KIND_ROOT, Sim
from mesdash.synth.orders import Orders

KIND_CHAIN, KIND_FINISHED, KIND_WAFER, KIND_MATERIAL = 3, 4, 5, 6
DAY = 86_400


@dataclass
class Rows:
    """Container rows under construction (one entry per container, local order)."""

    cid: list[np.ndarray] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    mfg: list[str | None] = field(default_factory=list)
    objecttype: list[str] = field(default_factory=list)
    first: list[str | None] = field(default_factory=list)
    split_from: list[np.ndarray] = field(default_factory=list)
    original: list[np.ndarray] = field(default_factory=list)
    product: list[np.ndarray] = field(default_factory=list)
    spec: list[str] = field(default_factory=list)
    qty: list[np.ndarray] = field(default_factory=list)
    status: list[np.ndarray] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.name)

    def add(self, *, cid: np.ndarray, name: list[str], mfg: Sequence[str | None], objecttype: str,
            first: Sequence[str | None], split_from: np.ndarray, original: np.ndarray,
            product: np.ndarray, spec: list[str], qty: np.ndarray, status: np.ndarray) -> np.ndarray:
        start = self.n
        self.cid.append(cid)
        self.name.extend(name)
        self.mfg.extend(mfg)
        self.objecttype.extend([objecttype] * len(name))
        self.first.extend(first)
        self.split_from.append(split_from)
        self.original.append(original)
        self.product.append(product)
        self.spec.extend(spec)
        self.qty.append(qty)
        self.status.append(status)
        return np.arange(start, self.n)


@dataclass
class Genealogy:
    ctx: Ctx
    orders: Orders
    sim: Sim
    rng: np.random.Generator
    gd_seq: dict[int, int]
    finished_seq: list[int]
    rows: Rows = field(default_factory=Rows)
    lineage: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    combined: list[pa.Table] = field(default_factory=list)
    moveouts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, str]] = field(
        default_factory=list)
    checkpoints: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list)

    # ----------------------------------------------------------------- sim lots -----------
    def sim_lots(self) -> None:
        s, o, ctx = self.sim.state, self.orders, self.ctx
        n = self.sim.n
        cid = ctx.ids.take("container", n)
        kind = s["kind"]
        names: list[str] = [""] * n
        mfg: list[str | None] = [o.names[w] for w in s["wo"].tolist()]
        for i in np.nonzero(kind == KIND_ROOT)[0].tolist():
            names[i] = f"{mfg[i]}-A00-{int(s['lot_no'][i]):03d}"
        children = np.nonzero(kind == KIND_CHILD)[0]
        order = children[np.argsort(s["root"][children], kind="stable")]
        roots = s["root"][order]
        first_of = np.r_[True, roots[1:] != roots[:-1]]
        start = np.maximum.accumulate(np.where(first_of, np.arange(len(order)), 0))
        for i, k, r in zip(order.tolist(), (np.arange(len(order)) - start + 1).tolist(),
                           roots.tolist(), strict=True):
            names[i] = f"{names[r]}-{k:02d}"
        for i in np.nonzero(kind == KIND_GD)[0].tolist():
            names[i] = mfg[i] = self._gd_order(int(s["born"][i]))
            names[i] += "-A00-001"
        split_from = np.where(s["parent"] >= 0, cid[np.maximum(s["parent"], 0)], -1)
        original = np.where(kind == KIND_CHILD, cid[s["root"]], cid)
        original = np.where(kind == KIND_GD, cid[np.maximum(s["original"], 0)], original)
        done = s["done_group"] == cat.TEST
        route = self.ctx.products.route[s["product"]]
        pos = np.where(done, cat.TEST, s["pos_group"])
        spec_idx = np.where(pos >= 0, route[np.arange(n), np.maximum(pos, 0)], -1)
        specs = cat.all_specs()
        spec = [specs[i] if i >= 0 else cat.UNKNOWN_SPECS[1] for i in spec_idx.tolist()]
        wafer = [o.wafer_names[w] for w in s["wafer"].tolist()]
        self.rows.add(cid=cid, name=names, mfg=mfg, objecttype="LOT", first=wafer,
                      split_from=split_from, original=original, product=s["product"].copy(),
                      spec=spec, qty=np.where(done, 0, s["q"]).astype(float),
                      status=np.where(done, 2, 1))
        self.counts.update({"ga_lots": int((kind == KIND_ROOT).sum()),
                            "split_children": len(children),
                            "gd_lots": int((kind == KIND_GD).sum())})

    def _gd_order(self, t: int) -> str:
        stamp = (np.datetime64(self.ctx.t0, "s") + np.timedelta64(t, "s")).astype("datetime64[M]")
        month = int(stamp.astype(np.int64))
        yymm = (month // 12 + 70) % 100 * 100 + month % 12 + 1
        self.gd_seq[yymm] = self.gd_seq.get(yymm, 20) + 1
        return f"GD{yymm:04d}{self.gd_seq[yymm]:04d}"

    # -------------------------------------------------------------- oddities --------------
    def oddities(self, first_batch: bool, chains: int) -> None:
        """Self-references, cycles, missing parents (every batch a few) and, in the first
        batch, split chains deeper than 20."""
        s, rng = self.sim.state, self.rng
        roots = np.nonzero(s["kind"] == KIND_ROOT)[0]
        done_roots = roots[(s["done_group"][roots] == cat.TEST)
                           & (s["t"][roots] < self.ctx.span_end - 3 * DAY)]
        chain_roots = rng.permutation(done_roots)[:chains] if first_batch else done_roots[:0]
        pool = rng.permutation(np.setdiff1d(roots, chain_roots))
        n_self = (3 if first_batch else 0) + len(roots) // 500
        n_missing = (3 if first_batch else 0) + len(roots) // 1000
        cid = self.rows.cid[0]
        split_from = self.rows.split_from[0]
        cuts = np.cumsum([n_self, n_missing, 4 if first_batch else 0, 6 if first_batch else 0])
        selfs, missing, pairs, triples = np.split(pool[:cuts[-1]], cuts[:-1])
        split_from[selfs] = cid[selfs]
        split_from[missing] = self.ctx.ids.take("missing", len(missing))
        cycles = [pairs[i:i + 2] for i in range(0, len(pairs), 2)] + \
            [triples[i:i + 3] for i in range(0, len(triples), 3)]
        for cyc in cycles:
            split_from[cyc] = cid[np.roll(cyc, -1)]
        self.lineage.update({
            "self_references": hex16(cid[selfs]).to_pylist(),
            "missing_parents": hex16(cid[missing]).to_pylist(),
            "cycles": [hex16(cid[c]).to_pylist() for c in cycles],
        })
        self.counts["chain_lots"] = 0
        self.lineage["chains"] = [self._chain(int(r), int(21 + rng.integers(0, 10)))
                                  for r in chain_roots.tolist()]

    def _chain(self, root: int, depth: int) -> dict[str, Any]:
        s, ctx, rng = self.sim.state, self.ctx, self.rng
        parents = np.zeros(depth, dtype=np.int64)
        qty = np.maximum(1, (s["q"][root] * 0.8 ** np.arange(1, depth + 1)).astype(np.int64))
        t = s["t"][root] + np.cumsum(rng.integers(300, 3600, depth))
        cid = ctx.ids.take("container", depth)
        base_name = self.rows.name[root]
        local = self.rows.add(
            cid=cid, name=[f"{base_name}-R{i + 1:02d}" for i in range(depth)],
            mfg=[self.rows.mfg[root]] * depth, objecttype="LOT", first=[self.rows.first[root]] * depth,
            split_from=np.r_[self.rows.cid[0][root], cid[:-1]],
            original=np.full(depth, self.rows.cid[0][root]),
            product=np.full(depth, s["product"][root]), spec=[cat.GROUPS[cat.TEST].end_spec] * depth,
            qty=qty.astype(float), status=np.ones(depth, dtype=np.int64))
        parents[0] = root
        parents[1:] = local[:-1]
        self.moveouts.append((local, parents, qty, t, "SplitLot", "LotSplit"))
        self.checkpoints.append((local, np.full(depth, ctx.end_spec[cat.TEST]), t + 60, qty))
        ends = np.array([self.rows.cid[0][root], cid[-1]])
        root_hex, leaf_hex = hex16(ends).to_pylist()
        self.counts["chain_lots"] += depth
        return {"root": root_hex, "leaf": leaf_hex, "depth": depth}

    # --------------------------------------------------------------- merges ---------------
    def merges(self) -> None:
        s, rng, ctx = self.sim.state, self.rng, self.ctx
        cand = np.nonzero((s["done_group"] == cat.TEST) & (s["kind"] != KIND_GD)
                          & (rng.random(self.sim.n) < 0.6))[0]
        cand = cand[np.lexsort((s["t"][cand], s["wo"][cand]))]
        groups: list[list[int]] = []
        wo_list, cand_list = s["wo"][cand].tolist(), cand.tolist()
        i = 0
        while i < len(cand_list):
            cap = int(rng.integers(2, 6))
            j = i + 1
            while j < len(cand_list) and j - i < cap and wo_list[j] == wo_list[i]:
                j += 1
            if j - i >= 2:
                groups.append(cand_list[i:j])
            i = j
        if not groups:
            return
        size = np.array([len(g) for g in groups])
        src = np.array([x for g in groups for x in g])
        owner = np.repeat(np.arange(len(groups)), size)
        t_merge = np.maximum.reduceat(s["t"][src], np.r_[0, np.cumsum(size)[:-1]]) + \
            rng.integers(1800, DAY, len(groups))
        ok = t_merge < ctx.span_end - 120
        keep = ok[owner]
        groups = [g for g, k in zip(groups, ok.tolist(), strict=True) if k]
        src, t_merge, size = src[keep], t_merge[ok], size[ok]
        if not groups:
            return
        owner = np.repeat(np.arange(len(groups)), size)
        qty = s["q"][src].astype(np.float64)
        total = np.bincount(owner, weights=qty, minlength=len(groups))
        ratio = np.round(qty / total[owner], 4)
        last = np.cumsum(size) - 1
        ratio[last] = np.round(1 - (np.bincount(owner, weights=ratio) - ratio[last]), 4)
        first_src = np.array([g[0] for g in groups], dtype=np.int64)
        cid = ctx.ids.take("container", len(groups))
        wo = s["wo"][first_src].tolist()
        per_wo: dict[int, int] = {}
        names = []
        for w in wo:
            per_wo[w] = per_wo.get(w, 0) + 1
            names.append(f"{self.orders.names[w]}-A01-{per_wo[w]:03d}")
        local = self.rows.add(
            cid=cid, name=names, mfg=[self.orders.names[w] for w in wo], objecttype="LOT",
            first=[self.rows.first[i] for i in first_src.tolist()], split_from=np.full(len(cid), -1),
            original=cid, product=s["product"][first_src], spec=[cat.UNKNOWN_SPECS[0]] * len(cid),
            qty=total, status=np.full(len(cid), 2))
        serial = self._serials(t_merge)
        all_cid = self.rows.cid[0]
        root_born = s["born"][s["root"][src]]
        self.combined.append(build_table("DW_MES_PJ_COMBINEDASSYLOTS", len(src), {
            "CONTAINERID": hex16(all_cid[src]),
            "CONTAINERNAME": pa.array([self.rows.name[i] for i in src.tolist()]),
            "LOTID": hex16(cid[owner]),
            "FINISHEDNAME": pa.array(serial).take(pa.array(owner)),
            "PJ_WORKORDER": pa.array([self.orders.names[w] for w in s["wo"][src].tolist()]),
            "PJ_COMBINEDRATIO": floats(ratio),
            "PJ_GOODDIEQTY": floats(qty),
            "PJ_ORIGINALGOODDIEQTY": floats(s["qty0"][s["root"][src]]),
            "ORIGINALSTARTDATE": timestamps(ctx.t0, root_born),
        }))
        self.moveouts.append((local[owner], src, qty, t_merge[owner], "CombineLot", "LotCombine"))
        spec = cat.all_specs().index(cat.UNKNOWN_SPECS[0])
        self.checkpoints.append((local, np.full(len(local), spec), t_merge + 60, total))
        self.counts["finished_lots"] = len(groups)
        self.counts["merge_sources"] = len(src)

    def _serials(self, t: np.ndarray) -> list[str]:
        days = (np.datetime64(self.ctx.t0, "s") + t.astype("timedelta64[s]")).astype("datetime64[D]")
        years = days.astype("datetime64[Y]")
        doy = (days - years).astype(np.int64) + 1
        yy = (years.astype(np.int64) + 70) % 100
        out = []
        for y, d in zip(yy.tolist(), doy.tolist(), strict=True):
            c = self.finished_seq[0]
            self.finished_seq[0] += 1
            out.append(f"{y:02d}{d:03d}{chr(65 + (c // 1000) % 26)}{c % 1000:03d}")
        return out

    # ------------------------------------------------------- wafer and material lots ------
    def wafers(self, w0: int, w1: int) -> None:
        o = self.orders
        lo, hi = int(o.wafer_start[w0]), int(o.wafer_start[w1])
        n = hi - lo
        wo = np.repeat(np.arange(w0, w1), np.diff(o.wafer_start[w0:w1 + 1]))
        cid = self.ctx.ids.take("container", n)
        names = o.wafer_names[lo:hi]
        self.counts["wafer_lots"] = n
        self.rows.add(cid=cid, name=names, mfg=[o.gc_names[w] for w in wo.tolist()],
                      objecttype="LOT", first=names, split_from=np.full(n, -1), original=cid,
                      product=o.product[wo], spec=[cat.UNKNOWN_SPECS[1]] * n,
                      qty=np.zeros(n), status=np.full(n, 2))

    def material_lots(self, w0: int, w1: int) -> dict[str, np.ndarray]:
        """Material containers scrapped at die bond: returns their steps (for the WIP and
        reject builders)."""
        rng, ctx, o = self.rng, self.ctx, self.orders
        n = max(2, int(o.lot_start[w1] - o.lot_start[w0]) // 300)
        wo = rng.integers(w0, w1, n)
        cid = ctx.ids.take("container", n)
        self.counts["material_lots"] = n
        part = cat.MATERIALS[1]
        names = [f"{part.part}-{part.base + int(k)}-{int(k) % 90 + 10}" for k in
                 rng.integers(0, 99_999, n).tolist()]
        load = rng.integers(5, 60, n) * 1000
        local = self.rows.add(
            cid=cid, name=names, mfg=[o.names[w] for w in wo.tolist()], objecttype="MATERIAL",
            first=[None] * n, split_from=np.full(n, -1), original=cid, product=o.product[wo],
            spec=[cat.GROUPS[cat.DB].route_specs[0]] * n, qty=np.zeros(n), status=np.full(n, 2))
        machine = ctx.machines.by_group[cat.DB][rng.integers(0, len(ctx.machines.by_group[cat.DB]), n)]
        t_in = np.minimum(o.release[wo] + rng.integers(3600, 3 * DAY, n), ctx.span_end - 2 * 3600)
        t_out = t_in + rng.integers(600, 3600, n)
        return {
            "cont": local, "group": np.full(n, cat.DB), "machine": machine,
            "spec": np.full(n, cat.all_specs().index(cat.GROUPS[cat.DB].route_specs[0])),
            "t_move": t_in - rng.integers(60, 3600, n), "t_in": t_in, "t_out": t_out,
            "load": load, "charged": (load * rng.uniform(0.05, 1.0, n)).astype(np.int64),
            "defect": np.zeros(n, dtype=np.int64), "flags": np.zeros(n, dtype=np.uint8),
            "planted": np.zeros(n, dtype=np.int64),
        }

    # ---------------------------------------------------------------- output --------------
    def lots(self) -> Lots:
        r = self.rows
        cid = np.concatenate(r.cid)
        return Lots(cid=cid, cid_hex=hex16(cid), name=pa.array(r.name),
                    wo=pa.array(r.mfg, pa.string()), product=np.concatenate(r.product))

    def container_table(self, lots: Lots) -> pa.Table:
        r, ctx = self.rows, self.ctx
        product = lots.product
        return build_table("DW_MES_CONTAINER", r.n, {
            "CONTAINERID": lots.cid_hex,
            "CONTAINERNAME": lots.name,
            "MFGORDERNAME": lots.wo,
            "OBJECTTYPE": pa.array(r.objecttype),
            "FIRSTNAME": pa.array(r.first, pa.string()),
            "SPLITFROMID": hex16(np.concatenate(r.split_from)),
            "ORIGINALCONTAINERID": hex16(np.concatenate(r.original)),
            "PJ_TYPE": ctx.product_col("pj_type", product),
            "PJ_BOP": ctx.product_col("bop", product),
            "PJ_FUNCTION": ctx.product_col("function", product),
            "PRODUCTNAME": ctx.product_col("product", product),
            "PRODUCTLINENAME": ctx.product_col("line", product),
            "SPECNAME": pa.array(r.spec),
            "QTY": floats(np.concatenate(r.qty)),
            "STATUS": pa.array(np.concatenate(r.status).astype(np.int64)),
        })
