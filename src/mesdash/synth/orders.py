"""Work orders, their lots' release plan and the wafer lots they consume (whole span)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from mesdash.synth import catalog as cat

DAY = 86_400


@dataclass
class Orders:
    """Work orders in release order; lots of order ``w`` are ``lot_start[w]`` onwards."""

    names: list[str]  # GA work orders
    gc_names: list[str]  # the probe (GC) order of each work order's wafer lots
    release: np.ndarray  # seconds from the span start
    product: np.ndarray
    lot_count: np.ndarray
    lot_start: np.ndarray  # cumulative lot offsets (len = orders + 1)
    wafer_start: np.ndarray  # cumulative wafer offsets (len = orders + 1)
    wafer_names: list[str]

    @property
    def n(self) -> int:
        return len(self.names)

    def batches(self, lots_per_batch: int) -> list[tuple[int, int]]:
        """Contiguous ranges of orders holding about ``lots_per_batch`` lots each."""
        out = []
        start = 0
        while start < self.n:
            target = self.lot_start[start] + lots_per_batch
            stop = int(np.searchsorted(self.lot_start, target, side="left"))
            stop = min(max(stop, start + 1), self.n)
            out.append((start, stop))
            start = stop
        return out


def _yymm(t0: datetime, seconds: np.ndarray) -> np.ndarray:
    stamps = np.datetime64(t0, "s") + seconds.astype("timedelta64[s]")
    months = stamps.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return (months // 12 + 70) % 100 * 100 + months % 12 + 1


def make_orders(rng: np.random.Generator, t0: datetime, days: int, roots: int,
                n_products: int) -> Orders:
    counts = 1 + rng.poisson(5.0, size=roots // 3 + 10)
    cum = np.cumsum(counts)
    n = int(np.searchsorted(cum, roots)) + 1
    counts = counts[:n]
    counts[-1] -= int(cum[n - 1] - roots)
    span = days * DAY
    release = np.sort(rng.integers(0, span - 3 * 3600, n))
    weights = 1.0 / np.arange(1, n_products + 1) ** 0.8
    product = rng.choice(n_products, size=n, p=weights / weights.sum())
    yymm = _yymm(t0, release)
    seq = np.zeros(n, dtype=np.int64)
    for month in np.unique(yymm):  # running number within the month
        idx = np.nonzero(yymm == month)[0]
        seq[idx] = np.arange(1, len(idx) + 1) + 20
    names = [f"GA{m:04d}{s:04d}" for m, s in zip(yymm.tolist(), seq.tolist(), strict=True)]
    gc_names = [f"GC{m:04d}{s:04d}" for m, s in zip(yymm.tolist(), seq.tolist(), strict=True)]
    wafers = 1 + rng.binomial(2, 0.4, n)
    wafer_start = np.concatenate([[0], np.cumsum(wafers)])
    vend = rng.integers(0, len(cat.WAFER_VENDORS), int(wafer_start[-1]))
    code = rng.integers(0, 36**4, int(wafer_start[-1]))
    wafer_names = [
        f"{cat.WAFER_VENDORS[v]}-{10000 + w}#{_b36(c)}-{w % 9000 + 1000}P"
        for w, (v, c) in enumerate(zip(vend.tolist(), code.tolist(), strict=True))
    ]
    return Orders(names, gc_names, release, product, counts,
                  np.concatenate([[0], np.cumsum(counts)]), wafer_start, wafer_names)


def _b36(value: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(4):
        value, r = divmod(value, 36)
        out = digits[r] + out
    return out
