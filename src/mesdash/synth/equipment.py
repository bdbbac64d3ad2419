"""Equipment: repair and PM jobs (with their transactions) and E10 state hours per machine
per 12-hour shift, accumulated from the loads the machines ran and the jobs that stopped them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mesdash.synth import catalog as cat
from mesdash.synth.arrow import build_table, const, hex16, pick, timestamps
from mesdash.synth.context import Ctx, Lots
from mesdash.synth.events import expand

SHIFT = 12 * 3600
MINUTE = 60

# Transaction templates: (CDONAME, FROMJOBSTATUS, JOBSTATUS, STAGENAME, TOSTAGENAME)
_DONE = [
    ("JobCreate", None, "CREATED", "開單", "維修單確認"),
    ("JobAssign", "CREATED", "ASSIGNED", "維修單確認", "維修單確認"),
    ("JobClockOn", "ASSIGNED", "INPROGRESS", "維修單確認", "維修中"),
    ("JobProgress", "INPROGRESS", "INPROGRESS", "維修中", "PD-產品檢驗"),
    ("JobProgress", "INPROGRESS", "INPROGRESS", "PD-產品檢驗", "結單"),
    ("JobClockOff", "INPROGRESS", "ACTIVE", "結單", "結單"),
    ("JobComplete", "ACTIVE", "COMPLETED", "結單", "結單"),
]
_CANCEL = [_DONE[0], _DONE[1], ("JobCancel", "ASSIGNED", "CANCELLED", "維修單確認", "取消")]
_TEMPLATES = _DONE + _CANCEL  # cancelled jobs use rows 7..9


@dataclass
class Equipment:
    ctx: Ctx
    n_shifts: int
    busy: np.ndarray = field(init=False)
    udt: np.ndarray = field(init=False)
    sdt: np.ndarray = field(init=False)
    udt_job: np.ndarray = field(init=False)
    sdt_job: np.ndarray = field(init=False)
    job_count: int = 0
    affected_jobs: int = 0

    def __post_init__(self) -> None:
        shape = (self.ctx.machines.n, self.n_shifts)
        self.busy, self.udt, self.sdt = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.udt_job = np.full(shape, -1, dtype=np.int64)
        self.sdt_job = np.full(shape, -1, dtype=np.int64)

    def add(self, acc: np.ndarray, machine: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        """Add the hours of [start, end) to each machine's shifts."""
        end = np.minimum(end, self.n_shifts * SHIFT)
        first = start // SHIFT
        span = int(((end - 1) // SHIFT - first).max(initial=0)) + 1
        for k in range(span):
            s = first + k
            lo = np.maximum(start, s * SHIFT)
            hi = np.minimum(end, (s + 1) * SHIFT)
            ok = (hi > lo) & (s < self.n_shifts)
            flat = machine[ok] * self.n_shifts + s[ok]
            acc.ravel()[:] += np.bincount(flat, weights=(hi - lo)[ok] / 3600.0, minlength=acc.size)

    # ----------------------------------------------------------------- jobs --------------
    def repair_jobs(self, lots: Lots, st: dict[str, np.ndarray],
                    rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
        """Repairs raised while a lot ran; they name that lot and the machine's previous
        loads of the last two days (chronological, comma-joined)."""
        self.add(self.busy, st["machine"], st["t_in"], st["t_out"])
        order = np.lexsort((st["t_in"], st["machine"]))
        pos = np.nonzero(rng.random(len(order)) < 0.02)[0]
        step = order[pos]
        run = (st["t_out"] - st["t_in"])[step]
        create = st["t_in"][step] + (run * rng.random(len(step))).astype(np.int64)
        extra = rng.integers(0, 4, len(step))
        ids, names = [], []
        for back in (3, 2, 1, 0):
            p = pos - back
            nb = order[np.maximum(p, 0)]
            ok = (p >= 0) & (back <= extra) & (st["machine"][nb] == st["machine"][step]) & \
                (st["t_in"][step] - st["t_in"][nb] < 2 * 86_400)
            cont = np.where(ok, st["cont"][nb], -1)
            idx = pa.array(cont, mask=cont < 0)
            ids.append(lots.cid_hex.take(idx))
            names.append(lots.name.take(idx))
        joined_ids = pc.binary_join_element_wise(*ids, ",", null_handling="skip")
        joined_names = pc.binary_join_element_wise(*names, ",", null_handling="skip")
        dur = np.clip(rng.lognormal(np.log(1.5 * 3600), 0.8, len(step)), 600, 20 * 3600)
        return self._jobs(st["machine"][step], create, dur.astype(np.int64), "Machine Repair",
                          joined_ids, joined_names, rng)

    def pm_jobs(self, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
        m = self.ctx.machines
        span = self.n_shifts * SHIFT
        per = np.arange(0, span, 28 * 86_400)
        machine = np.repeat(np.nonzero(m.production)[0], len(per))
        create = np.tile(per, int(m.production.sum())) + rng.integers(0, 28 * 86_400, len(machine))
        keep = create < self.ctx.span_end - 3600
        machine, create = machine[keep], create[keep]
        dur = rng.integers(3 * 3600, 8 * 3600, len(machine))
        nulls = pa.nulls(len(machine), pa.string())
        return self._jobs(machine, create, dur, "PM保養", nulls, nulls, rng)

    def _jobs(self, machine: np.ndarray, create: np.ndarray, dur: np.ndarray, model: str,
              lot_ids: pa.Array, lot_names: pa.Array,
              rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
        ctx, n, end = self.ctx, len(machine), self.ctx.span_end
        job = ctx.ids.take("job", n)
        cancelled = rng.random(n) < (0.13 if model != "PM保養" else 0.03)
        assign = create + rng.integers(5, 40, n) * MINUTE
        clock_on = assign + rng.integers(5, 60, n) * MINUTE
        clock_off = clock_on + dur
        complete = clock_off + rng.integers(5, 30, n) * MINUTE
        cancel = create + rng.integers(5, 180, n) * MINUTE
        done_times = np.stack([create, assign, clock_on, clock_on + dur // 3, clock_off - 60,
                               clock_off, complete], axis=1)
        cancel_times = np.stack([create, np.minimum(assign, cancel - 30), cancel], axis=1)
        times = np.concatenate([done_times, cancel_times], axis=1)
        valid = times < end
        valid[:, :7] &= ~cancelled[:, None]
        valid[:, 7:] &= cancelled[:, None]
        last = 9 - np.argmax(valid[:, ::-1], axis=1)
        status = np.array([t[2] for t in _TEMPLATES])[last]
        repair = ~cancelled & (clock_on < end)
        down = self.sdt if model == "PM保養" else self.udt
        down_job = self.sdt_job if model == "PM保養" else self.udt_job
        self.add(down, machine[repair], clock_on[repair], np.minimum(clock_off, end)[repair])
        shift = clock_on[repair] // SHIFT
        inside = shift < self.n_shifts
        down_job[machine[repair][inside], shift[inside]] = job[repair][inside]
        has_codes = valid[:, 3]
        codes = {k: pick(v, np.where(has_codes, rng.integers(0, len(v), n), -1))
                 for k, v in (("CAUSECODENAME", cat.JOB_CAUSES), ("REPAIRCODENAME", cat.JOB_REPAIRS),
                              ("SYMPTOMCODENAME", cat.JOB_SYMPTOMS))}
        stamp = np.datetime64(ctx.t0, "s") + create.astype("timedelta64[s]")
        year = stamp.astype("datetime64[Y]")
        doy = (stamp.astype("datetime64[D]") - year.astype("datetime64[D]")).astype(np.int64) + 1
        order_names = [f"{y + 1970} {d:03d}-{j - 0x4882CA8000000000:010d}" for y, d, j in
                       zip(year.astype(np.int64).tolist(), doy.tolist(), job.tolist(), strict=True)]
        m = ctx.machines
        people = [s + g for s in cat.SURNAMES for g in cat.GIVEN]
        jobs = build_table("DW_MES_JOB", n, {
            "JOBID": hex16(job),
            "RESOURCEID": pick(ctx.machine_ids, machine),
            "RESOURCENAME": pick(ctx.machine_names, machine),
            "JOBSTATUS": pa.array(status.tolist(), pa.string()),
            "JOBMODELNAME": pa.array([f"{m.prefix(i)}-{model}" for i in machine.tolist()]),
            "JOBORDERNAME": pa.array(order_names),
            "CREATEDATE": timestamps(ctx.t0, create),
            "COMPLETEDATE": timestamps(ctx.t0, complete, ~(valid[:, 6])),
            "CANCELDATE": timestamps(ctx.t0, cancel, ~(valid[:, 9])),
            "FIRSTCLOCKONDATE": timestamps(ctx.t0, clock_on, ~(valid[:, 2])),
            "LASTCLOCKOFFDATE": timestamps(ctx.t0, clock_off, ~(valid[:, 5])),
            **codes,
            "CREATE_EMPNAME": pick(people, rng.integers(0, len(people), n)),
            "COMPLETE_EMPNAME": pick(people, np.where(valid[:, 6], rng.integers(0, len(people), n), -1)),
            "CONTAINERIDS": lot_ids,
            "CONTAINERNAMES": lot_names,
        })
        self.job_count += n
        return jobs, self._txns(job, times, valid, codes, rng)

    def _txns(self, job: np.ndarray, times: np.ndarray, valid: np.ndarray,
              codes: dict[str, pa.Array], rng: np.random.Generator) -> pa.Table:
        owner, _ = expand(valid.sum(axis=1))
        slot = np.nonzero(valid)[1]  # row-major: per job in template order
        n = len(owner)
        tpl = list(zip(*_TEMPLATES, strict=True))
        coded = np.isin(slot, [3, 4, 5, 6])
        people = [s + g for s in cat.SURNAMES for g in cat.GIVEN]
        who = rng.integers(0, len(people), n)
        code_cols = {k: pc.if_else(pa.array(coded), v.take(pa.array(owner)), pa.nulls(n, pa.string()))
                     for k, v in codes.items()}
        return build_table("DW_MES_JOBTXNHISTORY", n, {
            "JOBTXNHISTORYID": hex16(self.ctx.ids.take("jobtxn", n)),
            "JOBID": hex16(job[owner]),
            "TXNDATE": timestamps(self.ctx.t0, times[valid]),
            "CDONAME": pick(tpl[0], slot),
            "FROMJOBSTATUS": pick(tpl[1], slot),
            "JOBSTATUS": pick(tpl[2], slot),
            "STAGENAME": pick(tpl[3], slot),
            "TOSTAGENAME": pick(tpl[4], slot),
            **code_cols,
            "USER_NAME": pick(people, who),
            "EMP_NAME": pick(people, who),
            "COMMENTS": pick([c or None for c in cat.JOB_COMMENTS],
                             rng.integers(0, len(cat.JOB_COMMENTS), n)),
        })

    # ------------------------------------------------------------------ E10 --------------
    def status_tables(self, rng: np.random.Generator, carriers: np.ndarray,
                      chunk: int = 400) -> Iterator[pa.Table]:
        """E10 rows per machine per shift (hours over the six states sum to 12), in chunks
        of machines, then the carriers' rows."""
        m = self.ctx.machines
        for lo in range(0, m.n, chunk):
            yield self._status_chunk(np.arange(lo, min(m.n, lo + chunk)), rng)
        yield self._carriers(carriers, rng)

    def _status_chunk(self, mach: np.ndarray, rng: np.random.Generator) -> pa.Table:
        shape = (len(mach), self.n_shifts)
        udt = np.minimum(self.udt[mach], 12.0).round(6)
        sdt = np.minimum(self.sdt[mach], 12.0 - udt).round(6)
        prd = (np.minimum(self.busy[mach], 12.0 - udt - sdt) * 0.97).round(6)
        egt = np.where(rng.random(shape) < 0.03, rng.uniform(0.5, 3.0, shape), 0.0)
        egt = np.maximum(0.0, np.minimum(egt, 12.0 - udt - sdt - prd)).round(6)
        rest = np.maximum(0.0, 12.0 - (prd + udt + sdt + egt)).round(6)
        idle = ((self.busy[mach] == 0) & (rng.random(shape) < 0.5)) | \
            ~self.ctx.machines.production[mach, None]
        hours = np.stack([prd, np.where(idle, 0.0, rest), udt, sdt, egt,
                          np.where(idle, rest, 0.0)], axis=2)
        mi, si, state = np.nonzero(hours > 1e-6)
        n = len(mi)
        machine = mach[mi]
        job = np.where(state == 2, self.udt_job[machine, si],
                       np.where(state == 3, self.sdt_job[machine, si], -1))
        nxt = np.roll(state, -1)
        t = si.astype(np.int64) * SHIFT
        return build_table("DW_MES_RESOURCESTATUS_SHIFT", n, {
            "HISTORYID": pick(self.ctx.machine_ids, machine),
            "TXNDATE": timestamps(self.ctx.t0, t),
            "DATADATE": timestamps(self.ctx.t0, t // 86_400 * 86_400 - int(7.5 * 3600)),
            "OLDSTATUSNAME": pick(cat.E10_STATES, state),
            "NEWSTATUSNAME": pick(cat.E10_STATES, nxt),
            "OLDREASONNAME": pick(cat.E10_REASONS, state),
            "HOURS": hours[mi, si, state],
            "JOBID": hex16(job),
        })

    def _carriers(self, carriers: np.ndarray, rng: np.random.Generator) -> pa.Table:
        n_c = len(carriers)
        owner, shift = expand(np.full(n_c, self.n_shifts))
        n = len(owner)
        state = (rng.random(n) < 0.3).astype(np.int64)
        t = shift.astype(np.int64) * SHIFT
        return build_table("DW_MES_RESOURCESTATUS_SHIFT", n, {
            "HISTORYID": hex16(carriers[owner]),
            "TXNDATE": timestamps(self.ctx.t0, t),
            "DATADATE": timestamps(self.ctx.t0, t // 86_400 * 86_400 - int(7.5 * 3600)),
            "OLDSTATUSNAME": pick(cat.CARRIER_STATES, state),
            "NEWSTATUSNAME": const("設備-LOST", n),
            "OLDREASONNAME": pick([f"{s}_NULL" for s in cat.CARRIER_STATES], state),
            "HOURS": np.full(n, 12.0),
        })
