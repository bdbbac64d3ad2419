"""Lots flowing through the station groups: one vectorized pass per group.

Every container alive at a group gets a move-in, optional holds, a queue, a track-in on a
production machine of the group and a track-out; rejects and defects are drawn from the
group's rates, raised by the planted excursions the lot carries (``flags``). Splits spawn
children that continue from the next group with a share of the quantity; children inherit
the parent's flags, so a split after the excursion station still carries it. A step that
would end after the span's end is not written: the lot is still in process there.

The forward (containment) case is drawn from a random stream of its own (``planted_rng``):
its extra rejects (``planted``: the step's charged-off units it adds, written as rows of
their own reason) change only the flagged lots' quantities, never another lot's draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mesdash.synth import catalog as cat
from mesdash.synth.dims import Machines

HOUR = 3600
FLAG_MACHINE, FLAG_MATERIAL, FLAG_WAFER, FLAG_FORWARD = 1, 2, 4, 8
TEST_FLAGS = FLAG_MACHINE | FLAG_MATERIAL | FLAG_WAFER  # the excursions final test sees
KIND_ROOT, KIND_CHILD, KIND_GD = 0, 1, 2


@dataclass(frozen=True)
class Excursions:
    """Planted quality problems (times in seconds from the span start)."""

    machine: int
    window: tuple[int, int]
    material_lot: int  # lot index of catalog.MATERIALS[EXCURSION_MATERIAL]
    wafer: int  # global wafer index
    machine_factor: float = 8.0
    material_factor: float = 6.0
    wafer_factor: float = 5.0
    downstream_factor: float = 2.0
    forward_machine: int = -1  # a machine of catalog.FORWARD_GROUP
    forward_window: tuple[int, int] = (0, 0)
    forward_front: float = 0.004  # mean share of the load lost at FORWARD_GROUP
    forward_down: float = 0.03  # ... and at FORWARD_DOWN_GROUP
    forward_p: float = 0.9  # how often a flagged lot loses it at each of the two

    def test_factor(self, flags: np.ndarray) -> np.ndarray:
        f = np.ones(len(flags))
        f = np.where(flags & FLAG_MACHINE, f * self.machine_factor, f)
        f = np.where(flags & FLAG_MATERIAL, f * self.material_factor, f)
        f = np.where(flags & FLAG_WAFER, f * self.wafer_factor, f)
        return np.minimum(f, 20.0)


def material_lot_index(part: int, offset: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Which lot of a material part a machine is consuming at time ``t``."""
    hours = cat.MATERIALS[part].lot_hours
    return (t + offset + 30 * 86_400) // int(hours * HOUR)


_STATE = {
    "kind": np.int8, "parent": np.int32, "root": np.int32, "wo": np.int32, "product": np.int32,
    "wafer": np.int32, "lot_no": np.int32, "qty0": np.int64, "start_group": np.int8,
    "t": np.int64, "q": np.int64, "flags": np.uint8, "split_at": np.int8, "alive": bool,
    "done_group": np.int8, "born": np.int64, "pos_group": np.int8, "original": np.int32,
}
_QUALITY_HOLDS = np.array([i for i, (_, q) in enumerate(cat.HOLD_REASONS) if q])
_OTHER_HOLDS = np.array([i for i, (_, q) in enumerate(cat.HOLD_REASONS) if not q])
_STEP = ["cont", "group", "machine", "spec", "t_move", "t_in", "t_out", "load", "charged",
         "defect", "flags", "planted"]
_HOLD = ["cont", "group", "t_hold", "t_release", "reason", "qty", "repeat"]
_SPLIT = ["parent", "child", "t", "qty"]


@dataclass
class Sim:
    rng: np.random.Generator
    machines: Machines
    route: np.ndarray  # product -> spec per group
    exc: Excursions
    span_end: int
    planted_rng: np.random.Generator | None = None  # the forward case's own stream
    state: dict[str, np.ndarray] = field(default_factory=dict)
    steps: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _STEP})
    holds: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _HOLD})
    splits: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _SPLIT})

    def __post_init__(self) -> None:
        self.state = {k: np.zeros(0, dtype=t) for k, t in _STATE.items()}

    @property
    def n(self) -> int:
        return len(self.state["kind"])

    def add(self, **cols: np.ndarray) -> np.ndarray:
        """Append containers (missing columns get defaults); returns their local indexes."""
        n = len(next(iter(cols.values())))
        first = self.n
        defaults = {"parent": -1, "split_at": 99, "alive": True, "pos_group": -1, "original": -1}
        for key, dtype in _STATE.items():
            value = cols.get(key, defaults.get(key, 0))
            arr = np.broadcast_to(np.asarray(value, dtype=dtype), (n,))
            self.state[key] = np.concatenate([self.state[key], arr])
        idx = np.arange(first, first + n)
        if "root" not in cols:
            self.state["root"][idx] = idx
        if "done_group" not in cols:
            self.state["done_group"][idx] = self.state["start_group"][idx] - 1
        return idx

    def plan_splits(self, idx: np.ndarray, p: float, first_group: int) -> None:
        """Some containers split after one of the groups ``first_group``..10."""
        rng = self.rng
        go = (rng.random(len(idx)) < p) & (first_group <= 10)
        at = rng.integers(first_group, 11, len(idx)) if first_group <= 10 else np.zeros(len(idx))
        self.state["split_at"][idx] = np.where(go, at, 99)

    # ------------------------------------------------------------------ the pass ----------
    def run(self, first_group: int = 0) -> None:
        for g in range(first_group, cat.N_GROUPS):
            act = np.nonzero(self.state["alive"] & (self.state["start_group"] <= g))[0]
            if len(act):
                self._group(g, act)

    def _group(self, g: int, act: np.ndarray) -> None:
        rng, s, n = self.rng, self.state, len(act)
        fresh = s["start_group"][act] == g
        t_move = s["t"][act] + np.where(fresh, 0, rng.exponential(0.25 * HOUR, n).astype(np.int64))
        ready = self._holds(g, act, t_move)
        t_in = ready + rng.exponential(cat.QUEUE_HOURS[g] * HOUR, n).astype(np.int64) + 60
        proc = cat.PROC_HOURS[g] * HOUR * rng.gamma(4.0, 0.25, n)
        t_out = t_in + np.maximum(proc, 600).astype(np.int64)
        pool = self.machines.by_group[g]
        machine = pool[rng.integers(0, len(pool), n)]
        flags = s["flags"][act] | self._exposure(g, act, machine, t_in)
        s["flags"][act] = flags
        load = s["q"][act]
        charged, defect = self._rejects(g, load, flags)
        planted = self._planted(g, act, flags, load - charged)
        charged = charged + planted
        done = t_out < self.span_end
        s["pos_group"][act] = np.where(t_move < self.span_end, g, s["pos_group"][act])
        spec = self.route[s["product"][act], g]
        d = done
        for key, val in zip(_STEP, [act, np.full(n, g), machine, spec, t_move, t_in, t_out, load,
                                    charged, defect, flags, planted], strict=True):
            self.steps[key].append(np.asarray(val)[d])
        cont = act[d]
        s["t"][cont] = t_out[d]
        s["q"][cont] = (load - charged)[d]
        s["done_group"][cont] = g
        s["alive"][act[~d]] = False
        if g == cat.N_GROUPS - 1:
            s["alive"][cont] = False
        self._split(g, cont)

    def _exposure(self, g: int, act: np.ndarray, machine: np.ndarray, t_in: np.ndarray) -> np.ndarray:
        out = np.zeros(len(act), dtype=np.uint8)
        exc = self.exc
        if g == self.machines.group[exc.machine]:
            hit = (machine == exc.machine) & (t_in >= exc.window[0]) & (t_in < exc.window[1])
            out |= np.where(hit, FLAG_MACHINE, 0).astype(np.uint8)
        part = cat.MATERIALS[cat.EXCURSION_MATERIAL]
        if g == part.group:
            lot = material_lot_index(cat.EXCURSION_MATERIAL, self.machines.offset[machine], t_in)
            out |= np.where(lot == exc.material_lot, FLAG_MATERIAL, 0).astype(np.uint8)
        if g == cat.FORWARD_GROUP:
            w0, w1 = exc.forward_window
            hit = (machine == exc.forward_machine) & (t_in >= w0) & (t_in < w1)
            out |= np.where(hit, FLAG_FORWARD, 0).astype(np.uint8)
        return out

    def _planted(self, g: int, act: np.ndarray, flags: np.ndarray, left: np.ndarray) -> np.ndarray:
        """The forward case's extra charged-off units: a share of the load at the molding
        group and a larger one at plating for flagged lots (not GD reworks, which re-enter
        at plating), drawn from ``planted_rng`` only."""
        out = np.zeros(len(act), dtype=np.int64)
        if g not in (cat.FORWARD_GROUP, cat.FORWARD_DOWN_GROUP) or self.planted_rng is None:
            return out
        hit = np.nonzero(((flags & FLAG_FORWARD) > 0) & (self.state["kind"][act] != KIND_GD))[0]
        if not len(hit):
            return out
        rng, exc = self.planted_rng, self.exc
        share = exc.forward_front if g == cat.FORWARD_GROUP else exc.forward_down
        lost = rng.random(len(hit)) < exc.forward_p
        qty = np.maximum(1, np.rint(left[hit] * share * rng.lognormal(-0.125, 0.5, len(hit))))
        out[hit] = np.where(lost, np.minimum(qty, left[hit] // 4), 0).astype(np.int64)
        return out

    def _rejects(self, g: int, load: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng, n = self.rng, len(load)
        if g == cat.TEST:
            factor = self.exc.test_factor(flags)
        elif g > cat.WB:
            factor = np.where(flags & FLAG_MACHINE, self.exc.downstream_factor, 1.0)
        else:
            factor = np.ones(n)
        out = []
        for p0, f0 in ((cat.REJECT_P[g], cat.REJECT_FRAC[g]), (cat.DEFECT_P[g], cat.REJECT_FRAC[g] / 2)):
            p = np.minimum(0.97, p0 * np.sqrt(factor))
            frac = f0 * factor * p0 / p * rng.lognormal(-0.125, 0.5, n)
            qty = np.where(rng.random(n) < p, np.maximum(1, np.rint(load * frac)), 0)
            out.append(np.minimum(qty, load // 2).astype(np.int64))
        return out[0], out[1]

    def _holds(self, g: int, act: np.ndarray, t_move: np.ndarray) -> np.ndarray:
        """Draw holds at move-in; returns when the lot is ready to start."""
        rng, n = self.rng, len(act)
        tested = (self.state["flags"][act] & TEST_FLAGS) > 0
        p = cat.HOLD_P[g] * np.where((g == cat.TEST) & tested, 4.0, 1.0)
        held = rng.random(n) < p
        again = held & (rng.random(n) < 0.15)
        h1 = t_move + rng.integers(30, 1800, n)
        snap = rng.random(n) < 0.04  # a few right around the 07:30 day boundary
        boundary = h1 // 86_400 * 86_400 + 86_400  # the next 07:30 (the span starts at 07:30)
        h1 = np.where(snap, boundary + rng.integers(-45, 45, n), h1)
        r1 = h1 + self._hold_duration(n)
        h2 = r1 + rng.integers(600, 4 * HOUR, n)
        r2 = h2 + self._hold_duration(n)
        quality = rng.random(n) < 0.5
        qual, other = _QUALITY_HOLDS, _OTHER_HOLDS
        r_a = np.where(quality, qual[rng.integers(0, len(qual), n)],
                       other[rng.integers(0, len(other), n)])
        r_b = rng.integers(0, len(cat.HOLD_REASONS), n)
        if g == cat.TEST:
            r_a = np.where(tested, 3, r_a)  # 良率偏低
        for sel, h, r, reason, rep in ((held, h1, r1, r_a, 0), (again, h2, r2, r_b, 1)):
            sel = sel & (h < self.span_end)
            rel = np.where(r < self.span_end, r, -1)
            for key, val in zip(_HOLD, [act, np.full(n, g), h, rel, reason, self.state["q"][act],
                                        np.full(n, rep)], strict=True):
                self.holds[key].append(np.asarray(val)[sel])
        ready = np.where(held, np.maximum(t_move, r1), t_move)
        return np.where(again, np.maximum(ready, r2), ready)

    def _hold_duration(self, n: int) -> np.ndarray:
        """Mostly hours; one in fifteen is a long engineering hold of days to weeks."""
        hours = self.rng.lognormal(np.log(3.0), 1.3, n)
        long = self.rng.random(n) < 1 / 15
        hours = np.where(long, self.rng.uniform(3 * 24, 45 * 24, n), hours)
        return (np.clip(hours, 0.1, 24 * 60) * HOUR).astype(np.int64)

    def _split(self, g: int, cont: np.ndarray) -> None:
        rng, s = self.rng, self.state
        par = cont[(s["split_at"][cont] == g) & (s["q"][cont] >= 200)]
        if not len(par):
            return
        parent = np.repeat(par, rng.choice([1, 2, 3], size=len(par), p=[0.7, 0.22, 0.08]))
        t = s["t"][parent] + rng.integers(60, 1800, len(parent))
        share = rng.uniform(0.1, 0.3, len(parent))
        keep = t < self.span_end
        parent, t, share = parent[keep], t[keep], share[keep]
        qty = np.maximum(1, (s["q"][parent] * share).astype(np.int64))
        np.subtract.at(s["q"], parent, qty)
        child = self.add(
            kind=np.full(len(parent), KIND_CHILD), parent=parent, root=s["root"][parent],
            wo=s["wo"][parent], product=s["product"][parent], wafer=s["wafer"][parent],
            lot_no=s["lot_no"][parent], qty0=qty, start_group=np.full(len(parent), g + 1),
            t=t, q=qty, flags=s["flags"][parent], born=t, done_group=np.full(len(parent), g),
        )
        self.plan_splits(child, 0.2, g + 1)
        for key, val in zip(_SPLIT, [parent, child, t, qty], strict=True):
            self.splits[key].append(val)

    # ------------------------------------------------------------------ results -----------
    def table(self, which: str) -> dict[str, np.ndarray]:
        parts = {"steps": self.steps, "holds": self.holds, "splits": self.splits}[which]
        return {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in parts.items()}
