"""What every table builder of a batch needs: ids, names, the batch's containers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa

from mesdash.synth import catalog as cat
from mesdash.synth.arrow import hex16
from mesdash.synth.dims import Machines, Products, spec_ids

ID_BASES = {
    "container": 0x4881038000100000,
    "mainline": 0x0009888000000000,
    "planted_mainline": 0x0009898000000000,  # reject events of the forward case alone
    "job": 0x4882CA8000000100,
    "jobtxn": 0x4881E28000000000,
    "missing": 0x48810380000F0000,  # split parents that do not exist: below every container id
}


@dataclass
class Ids:
    """Sequential ids per kind; the same call order gives the same ids."""

    next: dict[str, int] = field(default_factory=lambda: dict(ID_BASES))

    def take(self, kind: str, n: int) -> np.ndarray:
        start = self.next[kind]
        self.next[kind] = start + n
        return np.arange(start, start + n, dtype=np.int64)


@dataclass
class Ctx:
    t0: datetime
    span_end: int
    ids: Ids
    products: Products
    machines: Machines
    spec_names: pa.Array = field(init=False)
    spec_ids: pa.Array = field(init=False)
    wc_names: pa.Array = field(init=False)
    machine_names: pa.Array = field(init=False)
    machine_ids: pa.Array = field(init=False)
    end_spec: np.ndarray = field(init=False)  # group -> checkpoint spec index
    main_wc: np.ndarray = field(init=False)  # group -> first work center index

    def __post_init__(self) -> None:
        specs = cat.all_specs()
        wcs = cat.all_workcenters()
        self.spec_names = pa.array(specs)
        self.spec_ids = spec_ids()
        self.wc_names = pa.array(wcs)
        self.machine_names = pa.array(self.machines.names)
        self.machine_ids = hex16(self.machines.ids)
        self.end_spec = np.array([specs.index(g.end_spec) for g in cat.GROUPS])
        self.main_wc = np.array([wcs.index(g.workcenters[0]) for g in cat.GROUPS])

    def product_col(self, attr: str, product: np.ndarray) -> pa.Array:
        values = pa.array(getattr(self.products, attr))
        return values.take(pa.array(product.astype(np.int64)))


@dataclass
class Lots:
    """The batch's containers as Arrow columns, addressed by local index."""

    cid: np.ndarray  # int64 ids
    cid_hex: pa.Array
    name: pa.Array
    wo: pa.Array  # work order (PJ_WORKORDER / MFGORDERNAME)
    product: np.ndarray

    def take(self, col: pa.Array, idx: np.ndarray) -> pa.Array:
        return col.take(pa.array(np.asarray(idx, dtype=np.int64)))
