"""Dimension tables: scales, products, machines and carriers, the spec and exclusion tables."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mesdash.synth import catalog as cat
from mesdash.synth.arrow import build_table, const, hex16, pick

MACHINE_ID_BASE = 0x4880168000000000
CARRIER_ID_BASE = 0x001EDE8000000000
TOOL_ID_BASE = 0x001EDF8000000000
SPEC_ID_BASE = 0x48812C8000000000
HOLD_REASON_ID_BASE = 0x00078A8000000B00


@dataclass(frozen=True)
class Scale:
    name: str
    roots: int  # GA lots released over the span
    days: int
    batch_roots: int  # lots simulated per batch (bounded memory)
    chains: int  # planted split chains deeper than 20
    carriers: int

    @property
    def lots_per_day(self) -> float:
        return self.roots / self.days


SCALES = {
    "tiny": Scale("tiny", 340, 75, 20_000, 3, 8),
    "demo": Scale("demo", 34_000, 365, 20_000, 5, 20),
    "large": Scale("large", 680_000, 365, 20_000, 10, 60),
}


@dataclass
class Products:
    n: int
    pj_type: list[str]
    function: list[str]
    package: list[str]
    line: list[str]
    bop: list[str]
    workflow: list[str]
    product: list[str]
    route: np.ndarray  # (n, groups) spec index into catalog.all_specs()


def make_products(rng: np.random.Generator, n: int = 60) -> Products:
    specs = cat.all_specs()
    funcs = list(cat.FUNCTIONS)
    pkg_p = cat.PACKAGE_WEIGHTS / cat.PACKAGE_WEIGHTS.sum()
    pj_type, function, package, line, bop, workflow, product = ([] for _ in range(7))
    route = np.zeros((n, cat.N_GROUPS), dtype=np.int32)
    seen: set[str] = set()
    for i in range(n):
        fn = funcs[int(rng.integers(len(funcs)))]
        base = cat.FUNCTIONS[fn][int(rng.integers(len(cat.FUNCTIONS[fn])))]
        pkg = cat.PACKAGES[int(rng.choice(len(cat.PACKAGES), p=pkg_p))]
        name = f"{base}_R{1 + int(rng.integers(2))}_{i:03d}A1"
        while name in seen:  # pragma: no cover - names carry the index
            name += "X"
        seen.add(name)
        pj_type.append(base)
        function.append(fn)
        package.append(pkg)
        line.append(f"PB_{pkg}" if rng.random() < 0.12 else pkg)
        bop.append(cat.BOPS[int(rng.integers(len(cat.BOPS)))])
        workflow.append(f"{cat.FLOWS[int(rng.integers(len(cat.FLOWS)))]}_{pkg}")
        product.append(name)
        for g, group in enumerate(cat.GROUPS):
            route[i, g] = specs.index(group.route_specs[int(rng.integers(len(group.route_specs)))])
    return Products(n, pj_type, function, package, line, bop, workflow, product, route)


_FAMILY = ["切割機", "黏晶機", "焊線機", "Clip機", "成型機", "去膠機", "吹砂機", "電鍍線", "印字機",
           "切彎腳機", "切割機", "測試機"]
_VENDORS = [["DISCO", "ACCRETECH"], ["ASM", "BESI"], ["K&S", "ASM", "SHINKAWA"], ["ASM"],
            ["TOWA", "ASM"], ["YAMADA"], ["MACOHO"], ["MECO", "TECHNIC"], ["ESI", "HANS"],
            ["YAMADA", "ASM"], ["DISCO"], ["MULTITEST", "TESEC", "ASECO"]]
_LOCATIONS = ["A棟1F", "A棟2F", "B棟1F", "B棟2F", "C棟3F"]
_DEPTS = ["封裝一部", "封裝二部", "測試部"]


@dataclass
class Machines:
    n: int
    ids: np.ndarray  # int64 resource ids
    names: list[str]
    group: np.ndarray  # station group index
    workcenter: np.ndarray  # index into catalog.all_workcenters()
    production: np.ndarray  # bool: runs lots
    offset: np.ndarray  # seconds: material lot phase per machine
    by_group: list[np.ndarray]  # production machine indexes per group

    def prefix(self, i: int) -> str:
        return self.names[i].split("-")[0]


def make_machines(rng: np.random.Generator, scale: Scale) -> Machines:
    wcs = cat.all_workcenters()
    names: list[str] = []
    group, workcenter, production = [], [], []
    containers_per_day = scale.lots_per_day * 1.35
    for g, grp in enumerate(cat.GROUPS):
        need = containers_per_day * cat.PROC_HOURS[g] / 24 / 0.6
        n_prod = max(3, math.ceil(need))
        n_idle = 1 if scale.name != "tiny" or g % 4 == 0 else 0
        for k in range(n_prod + n_idle):
            prefix = grp.prefixes[k % len(grp.prefixes)]
            names.append(f"{prefix}-{11 + k // len(grp.prefixes):04d}")
            group.append(g)
            workcenter.append(wcs.index(grp.workcenters[k % len(grp.workcenters)]))
            production.append(k < n_prod)
    n = len(names)
    group_a = np.array(group, dtype=np.int8)
    prod_a = np.array(production, dtype=bool)
    return Machines(
        n=n,
        ids=MACHINE_ID_BASE + 0x10 + np.arange(n, dtype=np.int64),
        names=names,
        group=group_a,
        workcenter=np.array(workcenter, dtype=np.int32),
        production=prod_a,
        offset=rng.integers(0, 10 * 86400, n),
        by_group=[np.nonzero((group_a == g) & prod_a)[0] for g in range(cat.N_GROUPS)],
    )


def resource_table(rng: np.random.Generator, m: Machines, scale: Scale) -> pa.Table:
    wcs = cat.all_workcenters()
    fam = [f"{m.prefix(i)}{_FAMILY[m.group[i]]}" for i in range(m.n)]
    vendors = [_VENDORS[m.group[i]][i % len(_VENDORS[m.group[i]])] for i in range(m.n)]
    key_groups = np.isin(m.group, [cat.DB, cat.WB, 4, cat.TEST])
    status = np.where(m.production, "使用中", "閒置")
    machines = build_table("DW_MES_RESOURCE", m.n, {
        "RESOURCEID": hex16(m.ids),
        "RESOURCENAME": pa.array(m.names),
        "OBJECTCATEGORY": pa.array(np.where(m.group == 0, "WAFERSORT", "ASSEMBLY").tolist()),
        "OBJECTTYPE": const("EQUIPMENT", m.n),
        "RESOURCEFAMILYNAME": pa.array(fam),
        "WORKCENTERNAME": pick(wcs, m.workcenter),
        "LOCATIONNAME": pick(_LOCATIONS, rng.integers(0, len(_LOCATIONS), m.n)),
        "VENDORNAME": pa.array(vendors),
        "PJ_DEPARTMENT": pick(_DEPTS, np.where(m.group == cat.TEST, 2, m.group % 2)),
        "PJ_ASSETSSTATUS": pa.array(status.tolist()),
        "PJ_ISPRODUCTION": m.production.astype(np.float64),
        "PJ_ISKEY": (key_groups & (rng.random(m.n) < 0.6)).astype(np.float64),
        "PJ_ISMONITOR": (rng.random(m.n) < 0.2).astype(np.float64),
    })
    n_c = scale.carriers
    carriers = build_table("DW_MES_RESOURCE", n_c, {
        "RESOURCEID": hex16(CARRIER_ID_BASE + 0xB0 + np.arange(n_c)),
        "RESOURCENAME": pa.array([f"G30M0{1 + i % 2}-{180 + i:04d}" for i in range(n_c)]),
        "OBJECTCATEGORY": const("CARRIER", n_c),
        "OBJECTTYPE": const("CARRIER", n_c),
        "RESOURCEFAMILYNAME": pa.array([["G30M01焊接彈匣", "G30M02成型彈匣"][i % 2] for i in range(n_c)]),
        "PJ_ISPRODUCTION": np.zeros(n_c), "PJ_ISKEY": np.zeros(n_c), "PJ_ISMONITOR": np.zeros(n_c),
    })
    n_t = 6
    tools = build_table("DW_MES_RESOURCE", n_t, {
        "RESOURCEID": hex16(TOOL_ID_BASE + np.arange(n_t)),
        "RESOURCENAME": pa.array([f"MOLD-{p}-{i + 1:02d}" for i, p in enumerate(cat.PACKAGES[:n_t])]),
        "OBJECTCATEGORY": const("TOOL", n_t),
        "OBJECTTYPE": const("MOLD", n_t),
        "RESOURCEFAMILYNAME": const("成型模具", n_t),
        "WORKCENTERNAME": const("成型", n_t),
        "PJ_ASSETSSTATUS": const("使用中", n_t),
        "PJ_ISPRODUCTION": np.zeros(n_t), "PJ_ISKEY": np.zeros(n_t), "PJ_ISMONITOR": np.zeros(n_t),
    })
    return pa.concat_tables([machines, carriers, tools])


def carrier_ids(scale: Scale) -> np.ndarray:
    return CARRIER_ID_BASE + 0xB0 + np.arange(scale.carriers, dtype=np.int64)


def spec_table() -> pa.Table:
    rows: dict[str, list[str | None]] = {k: [] for k in (
        "SPEC", "SPECSEQUENCE", "WORK_CENTER", "WORK_CENTER_GROUP", "WORKCENTERSEQUENCE_GROUP",
        "WORK_CENTER_SHORT")}
    for g, grp in enumerate(cat.GROUPS):
        for wc in grp.workcenters:
            for k, spec in enumerate(cat.group_specs(grp)):
                rows["SPEC"].append(spec)
                rows["SPECSEQUENCE"].append(None if k % 3 == 2 else f"{(k + 1) * 10}")
                rows["WORK_CENTER"].append(wc)
                rows["WORK_CENTER_GROUP"].append(grp.name)
                rows["WORKCENTERSEQUENCE_GROUP"].append(cat.GROUP_SEQ[g])
                rows["WORK_CENTER_SHORT"].append(grp.short)
    n = len(rows["SPEC"])
    return build_table("DW_MES_SPEC_WORKCENTER_V", n, {k: pa.array(v, pa.string()) for k, v in rows.items()})


def spec_ids() -> pa.Array:
    return hex16(SPEC_ID_BASE + 0x0A + np.arange(len(cat.all_specs()), dtype=np.int64))


def exclude_table() -> pa.Table:
    codes = [c for c, _ in cat.EXCLUDE_CODES]
    n = len(codes)
    return build_table("ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE", n, {
        "REASON_ID": np.array([4600 + int(c) * 7 % 1700 + i for i, c in enumerate(codes)], float),
        "REASON_NAME": pa.array(codes),
        "DESCRIPTION": pa.array([f"{c}_{d}" for c, d in cat.EXCLUDE_CODES]),
        "ENABLE_FLAG": pa.array(["N" if c in cat.EXCLUDE_DISABLED else "Y" for c in codes]),
    })
