"""Lot event tables from a batch's simulated steps: WIP history (partial track-outs and
checkpoints), rejects, materials, holds and move-outs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mesdash.synth import catalog as cat
from mesdash.synth.arrow import build_table, const, floats, hex16, pick, timestamps
from mesdash.synth.context import Ctx, Lots
from mesdash.synth.flow import material_lot_index

Arrays = dict[str, np.ndarray]
_B36 = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", dtype=np.uint8)


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) for ``counts[i]`` rows per owner ``i``."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - first[owner]


def allocate(total: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split ``total[i]`` into ``counts[i]`` positive integer parts (needs total >= counts)."""
    owner, pos = expand(counts)
    k = counts[owner]
    spare = (total - counts)[owner]
    cut = np.where(pos == k - 1, 1.0, (pos + rng.uniform(0.2, 0.8, len(owner))) / k)
    cum = np.floor(spare * cut).astype(np.int64)
    prev = np.where(pos == 0, 0, np.roll(cum, 1))
    return 1 + cum - prev


def fixed_strings(chars: np.ndarray) -> pa.Array:
    """Rows of a (n, width) uint8 matrix of ASCII codes as strings."""
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()),
                                       pa.py_buffer(np.ascontiguousarray(chars).tobytes()))


def runcards(rng: np.random.Generator, n: int) -> pa.Array:
    """FINISHEDRUNCARD values like ``1D16C5287`` or ``1D204K537;1D204K867`` (half NULL)."""
    def one() -> pa.Array:
        chars = np.empty((n, 9), dtype=np.uint8)
        chars[:, 0], chars[:, 1] = ord("1"), ord("D")
        chars[:, 2:] = _B36[rng.integers(0, len(_B36), (n, 7))]
        return fixed_strings(chars)

    first, second = one(), one()
    second = pc.if_else(pa.array(rng.random(n) < 0.2), second, pa.nulls(n, pa.string()))
    joined = pc.binary_join_element_wise(first, second, ";", null_handling="skip")
    return pc.if_else(pa.array(rng.random(n) < 0.5), joined, pa.nulls(n, pa.string()))


def _lot_cols(ctx: Ctx, lots: Lots, cont: np.ndarray) -> dict[str, pa.Array]:
    product = lots.product[cont]
    return {
        "CONTAINERID": lots.take(lots.cid_hex, cont),
        "PJ_WORKORDER": lots.take(lots.wo, cont),
        "WORKFLOWNAME": ctx.product_col("workflow", product),
        "PRODUCTNAME": ctx.product_col("product", product),
        "PACKAGE_LF": ctx.product_col("package", product),
    }


def wip_history(ctx: Ctx, lots: Lots, st: Arrays, rng: np.random.Generator) -> pa.Table:
    """Partial track-outs: TRACKINQTY is what remains at each partial start; the charged-off
    rejects leave with the last partial, so load - SUM(TRACKOUTQTY) = the step's rejects."""
    n = len(st["cont"])
    out_qty = st["load"] - st["charged"]
    parts = rng.choice([1, 2, 3, 4], size=n, p=[0.7, 0.2, 0.08, 0.02])
    parts = np.where(out_qty >= 100, parts, 1)
    step, pos = expand(parts)
    k = parts[step]
    cut = np.where(pos == k - 1, 1.0, (pos + rng.uniform(0.2, 0.8, len(step))) / k)
    cum = np.floor(out_qty[step] * cut).astype(np.int64)
    prev = np.where(pos == 0, 0, np.roll(cum, 1))
    t_in, t_out = st["t_in"][step], st["t_out"][step]
    t_part = t_in + np.where(pos == k - 1, t_out - t_in, ((t_out - t_in) * cut).astype(np.int64))
    machine = st["machine"][step]
    is_test = st["group"][step] == cat.TEST
    card = pc.if_else(pa.array(is_test), runcards(rng, len(step)), pa.nulls(len(step), pa.string()))
    loads = build_table("DW_MES_LOTWIPHISTORY", len(step), {
        **_lot_cols(ctx, lots, st["cont"][step]),
        "WORKCENTERNAME": pick(ctx.wc_names, ctx.machines.workcenter[machine]),
        "SPECNAME": pick(ctx.spec_names, st["spec"][step]),
        "SPECID": pick(ctx.spec_ids, st["spec"][step]),
        "EQUIPMENTID": pick(ctx.machine_ids, machine),
        "EQUIPMENTNAME": pick(ctx.machine_names, machine),
        "TRACKINTIMESTAMP": timestamps(ctx.t0, t_in),
        "TRACKOUTTIMESTAMP": timestamps(ctx.t0, t_part),
        "TRACKINQTY": floats(st["load"][step] - prev),
        "TRACKOUTQTY": floats(cum - prev),
        "MOVEINTIMESTAMP": timestamps(ctx.t0, st["t_move"][step]),
        "MOVEINQTY": floats(st["load"][step]),
        "FINISHEDRUNCARD": card,
    })
    t_check = st["t_out"] + rng.integers(30, 600, n)
    chk = np.nonzero((rng.random(n) < 0.3) & (t_check < ctx.span_end))[0]
    spec = ctx.end_spec[st["group"][chk]]
    checkpoints = build_table("DW_MES_LOTWIPHISTORY", len(chk), {
        **_lot_cols(ctx, lots, st["cont"][chk]),
        "WORKCENTERNAME": pick(ctx.wc_names, ctx.main_wc[st["group"][chk]]),
        "SPECNAME": pick(ctx.spec_names, spec),
        "SPECID": pick(ctx.spec_ids, spec),
        "MOVEINTIMESTAMP": timestamps(ctx.t0, t_check[chk]),
        "MOVEINQTY": floats(out_qty[chk]),
    })
    return pa.concat_tables([loads, checkpoints])


# Reject reasons: each group's valid ones, then excluded, disabled and invalid names.
REASONS = [r for rs in cat.GROUP_REASONS for r in rs] + cat.EXCLUDED_REASONS + \
    cat.DISABLED_REASONS + cat.INVALID_REASONS
_GROUP_FIRST = np.cumsum([0] + [len(r) for r in cat.GROUP_REASONS])
_KIND_FIRST = [len(REASONS) - len(cat.INVALID_REASONS) - len(cat.DISABLED_REASONS)
               - len(cat.EXCLUDED_REASONS)]
_KIND_FIRST += [_KIND_FIRST[0] + len(cat.EXCLUDED_REASONS),
                _KIND_FIRST[0] + len(cat.EXCLUDED_REASONS) + len(cat.DISABLED_REASONS)]
_KIND_SIZE = [len(cat.EXCLUDED_REASONS), len(cat.DISABLED_REASONS), len(cat.INVALID_REASONS)]


def _reasons(group: np.ndarray, rng: np.random.Generator, valid_only: bool = False) -> np.ndarray:
    n = len(group)
    own = _GROUP_FIRST[group] + (rng.random(n) * (_GROUP_FIRST[group + 1] - _GROUP_FIRST[group]))
    out = own.astype(np.int64)
    if valid_only:
        return out
    kind = rng.choice(4, size=n, p=cat.REASON_KIND_P)
    for k in (1, 2, 3):
        other = _KIND_FIRST[k - 1] + rng.integers(0, _KIND_SIZE[k - 1], n)
        out = np.where(kind == k, other, out)
    return out


def rejects(ctx: Ctx, lots: Lots, st: Arrays, rng: np.random.Generator) -> pa.Table:
    """Several reason rows per event share HISTORYMAINLINEID and repeat MOVEINQTY. The
    forward case's units (``planted``) are one more row of the step's event, with the
    case's reason; they take no draws, so the other rows are what they were without it."""
    planted = st["planted"]
    base = st["charged"] - planted
    ev = np.nonzero((base > 0) | (st["defect"] > 0))[0]
    charged, defect = base[ev], st["defect"][ev]
    r = np.minimum(rng.choice([1, 2, 3, 4], size=len(ev), p=[0.5, 0.3, 0.15, 0.05]), charged)
    rows = r + (defect > 0)
    owner, pos = expand(rows)
    is_defect = pos >= r[owner]
    qty = np.zeros(len(owner), dtype=np.int64)
    qty[~is_defect] = allocate(charged[r > 0], r[r > 0], rng)
    qty[is_defect] = defect[owner[is_defect]]
    step = ev[owner]
    group = st["group"][step]
    p_test, p_asm = cat.BUCKET_P_TEST, cat.BUCKET_P_ASSEMBLY
    bucket = np.where(group == cat.TEST, rng.choice(5, len(owner), p=p_test),
                      rng.choice(5, len(owner), p=p_asm))
    bucket = np.where(is_defect, 5, bucket)
    reason = np.where(is_defect, _reasons(group, rng, True), _reasons(group, rng))
    mainline = ctx.ids.take("mainline", len(ev))
    comment = rng.integers(0, len(cat.REASON_COMMENTS), len(owner))
    cols: dict[str, object] = {
        **{k: v for k, v in _lot_cols(ctx, lots, st["cont"][step]).items()
           if k in ("CONTAINERID", "PJ_WORKORDER")},
        "WORKCENTERNAME": pick(ctx.wc_names, ctx.machines.workcenter[st["machine"][step]]),
        "SPECNAME": pick(ctx.spec_names, st["spec"][step]),
        "SPECID": pick(ctx.spec_ids, st["spec"][step]),
        "EQUIPMENTNAME": pick(ctx.machine_names, st["machine"][step]),
        "LOSSREASONNAME": pick(REASONS, reason),
        "MOVEINQTY": floats(st["load"][step]),
        "TXNDATE": timestamps(ctx.t0, st["t_out"][step]),
        "HISTORYMAINLINEID": hex16(mainline[owner]),
        "REJECTCOMMENT": pick([c or None for c in cat.REASON_COMMENTS], comment),
    }
    for b, name in enumerate([*cat.BUCKETS, "DEFECTQTY"]):
        cols[name] = floats(np.where(bucket == b, qty, 0))
    table = build_table("DW_MES_LOTREJECTHISTORY", len(owner), cols)
    extra = np.nonzero(planted > 0)[0]
    if not len(extra):
        return table
    return pa.concat_tables([table, _planted_rejects(ctx, lots, st, extra, ev, mainline)])


_FORWARD_REASON = {cat.FORWARD_GROUP: REASONS.index(cat.FORWARD_FRONT_REASON),
                   cat.FORWARD_DOWN_GROUP: REASONS.index(cat.FORWARD_DOWN_REASON)}


def _planted_rejects(ctx: Ctx, lots: Lots, st: Arrays, steps: np.ndarray, ev: np.ndarray,
                     mainline: np.ndarray) -> pa.Table:
    """One REJECTQTY row per step the forward case charged: in the step's reject event
    (its HISTORYMAINLINEID) when it has one, else an event of its own."""
    n = len(steps)
    line = ctx.ids.take("planted_mainline", n)
    if len(ev):  # ev is sorted (np.nonzero); mainline[i] is ev[i]'s event
        pos = np.minimum(np.searchsorted(ev, steps), len(ev) - 1)
        line = np.where(ev[pos] == steps, mainline[pos], line)
    reason = np.array([_FORWARD_REASON[int(g)] for g in st["group"][steps]], dtype=np.int64)
    cols: dict[str, object] = {
        **{k: v for k, v in _lot_cols(ctx, lots, st["cont"][steps]).items()
           if k in ("CONTAINERID", "PJ_WORKORDER")},
        "WORKCENTERNAME": pick(ctx.wc_names, ctx.machines.workcenter[st["machine"][steps]]),
        "SPECNAME": pick(ctx.spec_names, st["spec"][steps]),
        "SPECID": pick(ctx.spec_ids, st["spec"][steps]),
        "EQUIPMENTNAME": pick(ctx.machine_names, st["machine"][steps]),
        "LOSSREASONNAME": pick(REASONS, reason),
        "MOVEINQTY": floats(st["load"][steps]),
        "TXNDATE": timestamps(ctx.t0, st["t_out"][steps]),
        "HISTORYMAINLINEID": hex16(line),
        "REJECTCOMMENT": const("依MRB判定報廢", n),
        "REJECTQTY": floats(st["planted"][steps]),
    }
    for name in [*cat.BUCKETS[1:], "DEFECTQTY"]:
        cols[name] = floats(np.zeros(n, dtype=np.int64))
    return build_table("DW_MES_LOTREJECTHISTORY", n, cols)


def _material_lot_names(part: int, idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
    spec = cat.MATERIALS[part]
    uniq, inv = np.unique(idx, return_inverse=True)
    vendor = [f"{spec.base + int(i) // 5}-{10 + int(i) % 5}" for i in uniq]
    lot = [f"{v}-{int(i) % 7 + 1:03d}" for v, i in zip(vendor, uniq, strict=True)]
    take = pa.array(inv.astype(np.int64))
    vend = pa.array(vendor).take(take) if spec.vendor_lot else pa.nulls(len(idx), pa.string())
    return pa.array(lot, pa.string()).take(take), vend


def material_lot_name(part: int, idx: int) -> str:
    return _material_lot_names(part, np.array([idx]))[0][0].as_py()


def materials(ctx: Ctx, lots: Lots, st: Arrays, rng: np.random.Generator) -> pa.Table:
    tables = []
    for part_no, part in enumerate(cat.MATERIALS):
        use = np.nonzero((st["group"] == part.group) & (rng.random(len(st["group"])) < 0.93))[0]
        machine = st["machine"][use]
        t_in = st["t_in"][use]
        lot_idx = material_lot_index(part_no, ctx.machines.offset[machine], t_in)
        lot_name, vendor = _material_lot_names(part_no, lot_idx)
        consumed = np.round(st["load"][use] * part.per_unit * rng.lognormal(0, 0.05, len(use)), 3)
        cols = _lot_cols(ctx, lots, st["cont"][use])
        tables.append(build_table("DW_MES_LOTMATERIALSHISTORY", len(use), {
            "CONTAINERID": cols["CONTAINERID"], "PJ_WORKORDER": cols["PJ_WORKORDER"],
            "MATERIALPARTNAME": const(part.part, len(use)),
            "MATERIALLOTNAME": lot_name,
            "DESCRIPTION": const(part.description, len(use)),
            "QTYCONSUMED": floats(consumed),
            "WORKCENTERNAME": pick(ctx.wc_names, ctx.machines.workcenter[machine]),
            "SPECNAME": pick(ctx.spec_names, st["spec"][use]),
            "EQUIPMENTID": pick(ctx.machine_ids, machine),
            "EQUIPMENTNAME": pick(ctx.machine_names, machine),
            "TXNDATE": timestamps(ctx.t0, t_in + rng.integers(30, 300, len(use))),
            "VENDORLOTNUMBER": vendor,
        }))
    return pa.concat_tables(tables)


def _people(rng: np.random.Generator, n: int) -> pa.Array:
    names = [s + g for s in cat.SURNAMES for g in cat.GIVEN]
    return pick(names, rng.integers(0, len(names), n))


def holds(ctx: Ctx, lots: Lots, h: Arrays, rng: np.random.Generator) -> pa.Table:
    n = len(h["cont"])
    open_ = h["t_release"] < 0
    quality = np.array([q for _, q in cat.HOLD_REASONS])[h["reason"]]
    ncr = quality & (rng.random(n) < 0.4)
    year = (np.datetime64(ctx.t0, "s") + h["t_hold"].astype("timedelta64[s]")).astype("datetime64[Y]")
    ncr_text = [f"NCR-{y}-{k:05d}" for y, k in zip(year.astype(np.int64) + 1970,
                                                    rng.integers(1, 99999, n), strict=True)]
    future = rng.random(n) < 0.08
    return build_table("DW_MES_HOLDRELEASEHISTORY", n, {
        "HISTORYMAINLINEID": hex16(ctx.ids.take("mainline", n)),
        "CONTAINERID": lots.take(lots.cid_hex, h["cont"]),
        "WORKCENTERNAME": pick(ctx.wc_names, ctx.main_wc[h["group"]]),
        "HOLDTXNDATE": timestamps(ctx.t0, h["t_hold"]),
        "RELEASETXNDATE": timestamps(ctx.t0, h["t_release"], open_),
        "HOLDEMP": _people(rng, n),
        "HOLDEMPDEPTNAME": pick(cat.HOLD_DEPTS, rng.integers(0, len(cat.HOLD_DEPTS), n)),
        "HOLDREASONID": hex16(0x00078A8000000BA1 + h["reason"]),
        "HOLDREASONNAME": pick([r for r, _ in cat.HOLD_REASONS], h["reason"]),
        "HOLDCOMMENTS": pick(cat.HOLD_COMMENTS, rng.integers(0, len(cat.HOLD_COMMENTS), n)),
        "RELEASEEMP": pc.if_else(pa.array(open_), pa.nulls(n, pa.string()), _people(rng, n)),
        "RELEASECOMMENTS": pick(cat.RELEASE_COMMENTS, np.where(
            open_, -1, rng.integers(0, len(cat.RELEASE_COMMENTS), n))),
        "NCRID": pc.if_else(pa.array(ncr), pa.array(ncr_text, pa.string()), pa.nulls(n, pa.string())),
        "FUTUREHOLDCOMMENTS": pick(cat.FUTURE_COMMENTS, np.where(
            future, rng.integers(0, len(cat.FUTURE_COMMENTS), n), -1)),
        "QTY": floats(h["qty"]),
        "PJ_WORKORDER": lots.take(lots.wo, h["cont"]),
    })


def moveouts(ctx: Ctx, lots: Lots, cont: np.ndarray, src: np.ndarray, qty: np.ndarray,
             t: np.ndarray, cdo: str, caller: str) -> pa.Table:
    """HM_LOTMOVEOUT rows: ``cont`` moved (or was created) from ``src``."""
    n = len(cont)
    cid = lots.take(lots.cid_hex, cont)
    return build_table("DW_MES_HM_LOTMOVEOUT", n, {
        "HISTORYMAINLINEID": hex16(ctx.ids.take("mainline", n)),
        "HISTORYID": cid,
        "CDONAME": const(cdo, n),
        "CALLBYCDONAME": const(caller, n),
        "CONTAINERID": cid,
        "CONTAINERNAME": lots.take(lots.name, cont),
        "FROMCONTAINERID": lots.take(lots.cid_hex, src),
        "FROMCONTAINERNAME": lots.take(lots.name, src),
        "QTY": floats(qty),
        "TXNDATE": timestamps(ctx.t0, t),
    })


def step_moveouts(ctx: Ctx, lots: Lots, st: Arrays, rng: np.random.Generator) -> pa.Table:
    t = np.minimum(st["t_out"] + rng.integers(5, 120, len(st["cont"])), ctx.span_end - 1)
    return moveouts(ctx, lots, st["cont"], st["cont"], st["load"] - st["charged"], t,
                    "MoveLot", "LotMoveOut")


def checkpoints(ctx: Ctx, lots: Lots, cont: np.ndarray, spec: np.ndarray, wc: np.ndarray,
                t: np.ndarray, qty: np.ndarray) -> pa.Table:
    """Checkpoint rows (no equipment, no track-in) for lots created outside the route."""
    return build_table("DW_MES_LOTWIPHISTORY", len(cont), {
        **_lot_cols(ctx, lots, cont),
        "WORKCENTERNAME": pick(ctx.wc_names, wc),
        "SPECNAME": pick(ctx.spec_names, spec),
        "SPECID": pick(ctx.spec_ids, spec),
        "MOVEINTIMESTAMP": timestamps(ctx.t0, t),
        "MOVEINQTY": floats(qty),
    })
