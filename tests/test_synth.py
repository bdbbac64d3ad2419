"""The synthetic fab: shapes, invariants, planted oddities and excursions, determinism.

Runs on the tiny generated warehouse of both dialects (``tiny_warehouse``); the
determinism tests generate fresh tiny DuckDB files.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mesdash.core.db.schema import table_names
from mesdash.core.db.warehouse import Warehouse
from mesdash.synth import catalog as cat
from mesdash.synth import generate, load_manifest, manifest_path

HEX16 = re.compile(r"^[0-9a-f]{16}$")
TEST_GROUP = "測試"


def q(wh: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    return wh.read_sql_df(sql, params).to_dicts()  # type: ignore[no-any-return]


def scalar(wh: Any, sql: str, **params: Any) -> Any:
    return wh.read_sql_df(sql, params).rows[0][0]


@pytest.fixture
def manifest(tiny_warehouse: Any) -> dict[str, Any]:
    data = load_manifest(tiny_warehouse)
    assert data is not None, manifest_path(tiny_warehouse)
    return data


def containers(wh: Any) -> dict[str, dict[str, Any]]:
    rows = q(wh, "SELECT CONTAINERID, CONTAINERNAME, MFGORDERNAME, OBJECTTYPE, FIRSTNAME, "
                 "SPLITFROMID, ORIGINALCONTAINERID, STATUS, QTY FROM dwh.DW_MES_CONTAINER")
    return {r["CONTAINERID"]: r for r in rows}


# ------------------------------------------------------------------ shapes and counts ----
def test_every_table_filled_and_counted_in_manifest(tiny_warehouse: Any,
                                                    manifest: dict[str, Any]) -> None:
    assert manifest["scale"] == "tiny" and manifest["seed"] == 7
    assert manifest["end_date"] == "2026-06-30"
    for name in table_names():
        count = scalar(tiny_warehouse, f"SELECT COUNT(*) FROM dwh.{name}")
        assert count > 0, name
        assert manifest["row_counts"][name] == count, name
    lots = scalar(tiny_warehouse, "SELECT COUNT(*) FROM dwh.DW_MES_CONTAINER "
                                  "WHERE MFGORDERNAME LIKE 'GA%' OR MFGORDERNAME LIKE 'GD%'")
    assert 300 <= lots <= 1200


def test_ids_are_16_hex_and_unique_keys(tiny_warehouse: Any) -> None:
    for table, col in [("DW_MES_CONTAINER", "CONTAINERID"), ("DW_MES_RESOURCE", "RESOURCEID"),
                       ("DW_MES_JOB", "JOBID"), ("DW_MES_JOBTXNHISTORY", "JOBTXNHISTORYID"),
                       ("DW_MES_HOLDRELEASEHISTORY", "HISTORYMAINLINEID")]:
        ids = [r[col] for r in q(tiny_warehouse, f"SELECT {col} FROM dwh.{table}")]
        assert all(HEX16.match(i) for i in ids), table
        assert len(ids) == len(set(ids)), table
    for table, col in [("DW_MES_LOTWIPHISTORY", "EQUIPMENTID"), ("DW_MES_LOTWIPHISTORY", "SPECID"),
                       ("DW_MES_LOTREJECTHISTORY", "HISTORYMAINLINEID"),
                       ("DW_MES_CONTAINER", "SPLITFROMID"), ("DW_MES_HM_LOTMOVEOUT", "HISTORYID")]:
        values = [r[col] for r in q(tiny_warehouse, f"SELECT DISTINCT {col} FROM dwh.{table} "
                                                    f"WHERE {col} IS NOT NULL")]
        assert values and all(HEX16.match(v) for v in values), table


def test_names_follow_the_factory_shapes(tiny_warehouse: Any) -> None:
    by_id = containers(tiny_warehouse)
    lots = [c for c in by_id.values() if (c["MFGORDERNAME"] or "").startswith(("GA", "GD"))
            and c["OBJECTTYPE"] == "LOT"]
    roots = [c for c in lots if re.fullmatch(r"G[AD]\d{8}-A0[01]-\d{3}", c["CONTAINERNAME"])]
    assert len(roots) > 300
    children = [c for c in lots if re.fullmatch(r"GA\d{8}-A00-\d{3}-\d{2}", c["CONTAINERNAME"])]
    assert children and all(c["SPLITFROMID"] in by_id for c in children)
    assert all(re.fullmatch(r"[A-Z]+-\d{5,6}#[0-9A-Z]{4}-\d{4}P", c["FIRSTNAME"])
               for c in lots)
    names = {c["CONTAINERNAME"] for c in by_id.values()}
    assert all(c["FIRSTNAME"] in names for c in lots), "every wafer lot is a container"
    material = [c for c in by_id.values() if c["OBJECTTYPE"] == "MATERIAL"]
    assert material
    lines = {r["PRODUCTLINENAME"] for r in q(tiny_warehouse, "SELECT DISTINCT PRODUCTLINENAME "
                                                             "FROM dwh.DW_MES_CONTAINER")}
    assert {"SOT-23", "SOD-323"} <= lines and any(x.startswith("PB_") for x in lines)


def test_spec_table_orders_the_twelve_groups(tiny_warehouse: Any) -> None:
    rows = q(tiny_warehouse, "SELECT WORK_CENTER_GROUP, WORKCENTERSEQUENCE_GROUP, COUNT(*) AS N "
                             "FROM dwh.DW_MES_SPEC_WORKCENTER_V GROUP BY WORK_CENTER_GROUP, "
                             "WORKCENTERSEQUENCE_GROUP ORDER BY WORKCENTERSEQUENCE_GROUP")
    assert [r["WORK_CENTER_GROUP"] for r in rows] == cat.GROUP_NAMES
    assert all(re.fullmatch(r"\d{3}", r["WORKCENTERSEQUENCE_GROUP"]) for r in rows)
    assert 100 <= sum(r["N"] for r in rows) <= 230
    unknown = scalar(tiny_warehouse, "SELECT COUNT(*) FROM dwh.DW_MES_LOTWIPHISTORY w WHERE NOT EXISTS "
                                     "(SELECT 1 FROM dwh.DW_MES_SPEC_WORKCENTER_V s WHERE s.SPEC = w.SPECNAME)")
    assert unknown > 0, "a few specs the table does not know (they sort last)"


# ------------------------------------------------------------- referential integrity ----
@pytest.mark.parametrize("table,column", [
    ("DW_MES_LOTWIPHISTORY", "CONTAINERID"), ("DW_MES_LOTREJECTHISTORY", "CONTAINERID"),
    ("DW_MES_LOTMATERIALSHISTORY", "CONTAINERID"), ("DW_MES_HOLDRELEASEHISTORY", "CONTAINERID"),
    ("DW_MES_PJ_COMBINEDASSYLOTS", "CONTAINERID"), ("DW_MES_PJ_COMBINEDASSYLOTS", "LOTID"),
    ("DW_MES_HM_LOTMOVEOUT", "CONTAINERID"), ("DW_MES_HM_LOTMOVEOUT", "FROMCONTAINERID"),
])
def test_lot_events_name_existing_containers(tiny_warehouse: Any, table: str, column: str) -> None:
    orphans = scalar(tiny_warehouse, f"SELECT COUNT(*) FROM dwh.{table} e WHERE NOT EXISTS "
                                     f"(SELECT 1 FROM dwh.DW_MES_CONTAINER c WHERE c.CONTAINERID = e.{column})")
    assert orphans == 0


@pytest.mark.parametrize("table,column,target,key", [
    ("DW_MES_LOTWIPHISTORY", "EQUIPMENTID", "DW_MES_RESOURCE", "RESOURCEID"),
    ("DW_MES_LOTMATERIALSHISTORY", "EQUIPMENTID", "DW_MES_RESOURCE", "RESOURCEID"),
    ("DW_MES_JOB", "RESOURCEID", "DW_MES_RESOURCE", "RESOURCEID"),
    ("DW_MES_RESOURCESTATUS_SHIFT", "HISTORYID", "DW_MES_RESOURCE", "RESOURCEID"),
    ("DW_MES_RESOURCESTATUS_SHIFT", "JOBID", "DW_MES_JOB", "JOBID"),
    ("DW_MES_JOBTXNHISTORY", "JOBID", "DW_MES_JOB", "JOBID"),
])
def test_equipment_and_job_keys_resolve(tiny_warehouse: Any, table: str, column: str,
                                        target: str, key: str) -> None:
    orphans = scalar(tiny_warehouse, f"SELECT COUNT(*) FROM dwh.{table} e WHERE e.{column} IS NOT NULL "
                                     f"AND NOT EXISTS (SELECT 1 FROM dwh.{target} t WHERE t.{key} = e.{column})")
    used = scalar(tiny_warehouse, f"SELECT COUNT(*) FROM dwh.{table} WHERE {column} IS NOT NULL")
    assert orphans == 0 and used > 0


def test_rejects_match_the_lots_history(tiny_warehouse: Any) -> None:
    """Each reject event names a load of that lot (spec, machine) and its charged-off total
    is what the load lost: MAX(TRACKINQTY) - SUM(TRACKOUTQTY)."""
    loads: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in q(tiny_warehouse, "SELECT w.CONTAINERID, w.SPECNAME, w.EQUIPMENTNAME, "
                               "MAX(w.TRACKINQTY) AS LOAD, SUM(w.TRACKOUTQTY) AS OUTPUT, "
                               "MAX(w.TRACKOUTTIMESTAMP) AS T FROM dwh.DW_MES_LOTWIPHISTORY w "
                               "WHERE w.EQUIPMENTID IS NOT NULL GROUP BY w.CONTAINERID, w.SPECNAME, "
                               "w.EQUIPMENTNAME, w.TRACKINTIMESTAMP"):
        loads[(r["CONTAINERID"], r["SPECNAME"], r["EQUIPMENTNAME"], r["T"])] = [r["LOAD"], r["OUTPUT"]]
    events = q(tiny_warehouse, "SELECT CONTAINERID, SPECNAME, EQUIPMENTNAME, TXNDATE, "
                               "MAX(MOVEINQTY) AS MOVEIN, SUM(REJECTQTY + STANDBYQTY + QTYTOPROCESS + "
                               "INPROCESSQTY + PROCESSEDQTY) AS CHARGED FROM dwh.DW_MES_LOTREJECTHISTORY "
                               "GROUP BY HISTORYMAINLINEID, CONTAINERID, SPECNAME, EQUIPMENTNAME, TXNDATE")
    assert len(events) > 50
    for e in events:
        load, output = loads[(e["CONTAINERID"], e["SPECNAME"], e["EQUIPMENTNAME"], e["TXNDATE"])]
        assert load == e["MOVEIN"] and load - output == e["CHARGED"], e
    charged = sum(1 for load, output in loads.values() if load > output)
    assert charged == sum(1 for e in events if e["CHARGED"] > 0)


# ------------------------------------------------------------------ lot history ----------
def test_partial_track_outs(tiny_warehouse: Any) -> None:
    """TRACKINQTY is the quantity remaining at each partial start: sorted by it, each next
    TRACKINQTY = previous TRACKINQTY - previous TRACKOUTQTY, and track-outs move forward."""
    loads: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in q(tiny_warehouse, "SELECT CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP, "
                               "TRACKOUTTIMESTAMP, TRACKINQTY, TRACKOUTQTY, MOVEINQTY, MOVEINTIMESTAMP "
                               "FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL"):
        loads[(r["CONTAINERID"], r["EQUIPMENTID"], r["SPECNAME"], r["TRACKINTIMESTAMP"])].append(r)
    multi = [rows for rows in loads.values() if len(rows) > 1]
    assert len(multi) > 100 and max(len(r) for r in multi) >= 3
    for rows in loads.values():
        rows.sort(key=lambda r: -r["TRACKINQTY"])
        assert rows[0]["TRACKINQTY"] == rows[0]["MOVEINQTY"]
        assert rows[0]["MOVEINTIMESTAMP"] <= rows[0]["TRACKINTIMESTAMP"]
        for prev, cur in itertools.pairwise(rows):
            assert cur["TRACKINQTY"] == prev["TRACKINQTY"] - prev["TRACKOUTQTY"]
            assert cur["TRACKOUTTIMESTAMP"] > prev["TRACKOUTTIMESTAMP"] > prev["TRACKINTIMESTAMP"]
        assert sum(r["TRACKOUTQTY"] for r in rows) <= rows[0]["TRACKINQTY"]
    checkpoints = q(tiny_warehouse, "SELECT MOVEINTIMESTAMP, MOVEINQTY, TRACKINQTY FROM "
                                    "dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NULL AND "
                                    "TRACKINTIMESTAMP IS NULL")
    assert len(checkpoints) > 100
    assert all(r["MOVEINTIMESTAMP"] and r["TRACKINQTY"] is None for r in checkpoints)
    filled = scalar(tiny_warehouse, "SELECT COUNT(*) FROM dwh.DW_MES_LOTWIPHISTORY WHERE "
                                    "WORKFLOWNAME IS NULL OR PACKAGE_LF IS NULL OR PJ_WORKORDER IS NULL")
    assert filled == 0


def test_lots_flow_through_the_groups_in_order(tiny_warehouse: Any) -> None:
    order = {r["SPEC"]: int(r["SEQ"]) for r in q(
        tiny_warehouse, "SELECT DISTINCT SPEC, WORKCENTERSEQUENCE_GROUP AS SEQ "
                        "FROM dwh.DW_MES_SPEC_WORKCENTER_V")}
    steps: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for r in q(tiny_warehouse, "SELECT CONTAINERID, SPECNAME, MIN(TRACKINTIMESTAMP) AS T "
                               "FROM dwh.DW_MES_LOTWIPHISTORY WHERE TRACKINTIMESTAMP IS NOT NULL "
                               "GROUP BY CONTAINERID, SPECNAME"):
        steps[r["CONTAINERID"]].append((r["T"], order[r["SPECNAME"]]))
    full = [s for s in steps.values() if len(s) == len(cat.GROUPS)]
    assert len(full) > 100
    for s in steps.values():
        seq = [o for _, o in sorted(s)]
        assert seq == sorted(seq)
    machines = q(tiny_warehouse, "SELECT r.WORKCENTERNAME AS RWC, w.WORKCENTERNAME AS WWC, "
                                 "r.OBJECTCATEGORY FROM dwh.DW_MES_LOTWIPHISTORY w JOIN dwh.DW_MES_RESOURCE r "
                                 "ON r.RESOURCEID = w.EQUIPMENTID")
    assert all(m["RWC"] == m["WWC"] and m["OBJECTCATEGORY"] in ("ASSEMBLY", "WAFERSORT")
               for m in machines)
    per_group = q(tiny_warehouse, "SELECT s.WORK_CENTER_GROUP, COUNT(DISTINCT w.EQUIPMENTID) AS N "
                                  "FROM dwh.DW_MES_LOTWIPHISTORY w JOIN dwh.DW_MES_SPEC_WORKCENTER_V s "
                                  "ON s.SPEC = w.SPECNAME AND s.WORK_CENTER = w.WORKCENTERNAME "
                                  "GROUP BY s.WORK_CENTER_GROUP")
    assert len(per_group) == 12 and all(r["N"] >= 3 for r in per_group)


def test_resources_have_flags_and_other_categories(tiny_warehouse: Any) -> None:
    rows = q(tiny_warehouse, "SELECT OBJECTCATEGORY, SUM(PJ_ISPRODUCTION) AS P, SUM(PJ_ISKEY) AS K, "
                             "SUM(PJ_ISMONITOR) AS M, COUNT(*) AS N FROM dwh.DW_MES_RESOURCE "
                             "GROUP BY OBJECTCATEGORY")
    cats = {r["OBJECTCATEGORY"]: r for r in rows}
    assert {"ASSEMBLY", "WAFERSORT", "CARRIER"} <= set(cats)
    assert cats["ASSEMBLY"]["P"] > 0 and cats["ASSEMBLY"]["K"] > 0 and cats["ASSEMBLY"]["M"] > 0
    assert cats["CARRIER"]["P"] == 0


# ----------------------------------------------------------------------- rejects ---------
def test_reject_buckets_reasons_and_mainlines(tiny_warehouse: Any) -> None:
    sums = q(tiny_warehouse, "SELECT SUM(REJECTQTY) AS A, SUM(STANDBYQTY) AS B, SUM(QTYTOPROCESS) AS C, "
                             "SUM(INPROCESSQTY) AS D, SUM(PROCESSEDQTY) AS E, SUM(DEFECTQTY) AS F "
                             "FROM dwh.DW_MES_LOTREJECTHISTORY")[0]
    assert all(v > 0 for v in sums.values()), sums
    groups = q(tiny_warehouse, "SELECT HISTORYMAINLINEID, COUNT(*) AS N, COUNT(DISTINCT MOVEINQTY) AS M "
                               "FROM dwh.DW_MES_LOTREJECTHISTORY GROUP BY HISTORYMAINLINEID")
    assert all(g["M"] == 1 for g in groups)
    assert sum(1 for g in groups if g["N"] > 1) > 20
    excl = {r["REASON_NAME"]: r["ENABLE_FLAG"] for r in q(
        tiny_warehouse, "SELECT REASON_NAME, ENABLE_FLAG FROM dwh.ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE")}
    assert len(excl) == 39 and {"Y", "N"} == set(excl.values())
    reasons = [r["LOSSREASONNAME"] for r in q(tiny_warehouse, "SELECT DISTINCT LOSSREASONNAME "
                                                              "FROM dwh.DW_MES_LOTREJECTHISTORY")]
    coded = [r for r in reasons if re.match(r"^\d{3}_", r)]
    assert any(excl.get(r[:3]) == "Y" for r in coded), "excluded by an enabled code"
    assert any(excl.get(r[:3]) == "N" for r in coded), "listed but disabled: stays in"
    assert any(r[:3] not in excl for r in coded), "ordinary valid reasons"
    assert any(r.startswith(("XXX_", "ZZZ_")) for r in reasons)
    assert any(not re.match(r"^\d{3}_", r) and not r.startswith(("XXX_", "ZZZ_")) for r in reasons)
    material = scalar(tiny_warehouse, "SELECT COUNT(*) FROM dwh.DW_MES_LOTREJECTHISTORY r JOIN "
                                      "dwh.DW_MES_CONTAINER c ON c.CONTAINERID = r.CONTAINERID "
                                      "WHERE c.OBJECTTYPE = 'MATERIAL'")
    assert material > 0


# ------------------------------------------------------------------------- lineage -------
def _walk(start: str, parent: dict[str, str | None]) -> tuple[int, bool]:
    """(depth, hit a cycle) of the SPLITFROMID walk from ``start``."""
    seen = {start}
    node, depth = start, 0
    while parent.get(node) and parent[node] != node:
        node = parent[node]  # type: ignore[assignment]
        if node in seen:
            return depth, True
        seen.add(node)
        depth += 1
        if node not in parent:
            break
    return depth, False


def test_split_genealogy_oddities(tiny_warehouse: Any, manifest: dict[str, Any]) -> None:
    by_id = containers(tiny_warehouse)
    parent = {cid: c["SPLITFROMID"] for cid, c in by_id.items()}
    selfs = [cid for cid, p in parent.items() if p == cid]
    missing = [cid for cid, p in parent.items() if p and p not in by_id]
    assert selfs and missing
    cycles = set()
    for cid, p in parent.items():
        if p and p != cid and p in parent:
            a = p
            path = [cid]
            while a and a not in path and a in parent and parent[a] != a and len(path) < 30:
                path.append(a)
                a = parent[a]
            if a == cid:
                cycles.add(frozenset(path))
    assert {2, 3} <= {len(c) for c in cycles}
    depths = {cid: _walk(cid, parent)[0] for cid in by_id}
    assert max(depths.values()) > 20
    assert sum(1 for d in depths.values() if d > 20) >= 3
    lineage = manifest["lineage"]
    assert {frozenset(c) for c in lineage["cycles"]} <= cycles
    assert set(lineage["self_references"]) <= set(selfs)
    assert all(depths[c["leaf"]] == c["depth"] for c in lineage["chains"])
    child = re.compile(r"GA\d{8}-A00-\d{3}-\d{2}")
    multi_level = [c for c in by_id.values() if child.fullmatch(c["CONTAINERNAME"])
                   and child.fullmatch(by_id[c["SPLITFROMID"]]["CONTAINERNAME"])]
    assert multi_level, "children split again (grandchildren)"
    gd = [c for c in by_id.values() if (c["MFGORDERNAME"] or "").startswith("GD")]
    assert gd and all(by_id[c["ORIGINALCONTAINERID"]]["MFGORDERNAME"].startswith("GA") for c in gd)
    children = [c for c in by_id.values() if c["SPLITFROMID"] in by_id and c["SPLITFROMID"] != c["CONTAINERID"]]
    assert all(c["ORIGINALCONTAINERID"] in by_id for c in children)


def test_merges_and_move_outs(tiny_warehouse: Any) -> None:
    rows = q(tiny_warehouse, "SELECT LOTID, CONTAINERID, FINISHEDNAME, PJ_COMBINEDRATIO, PJ_GOODDIEQTY "
                             "FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS")
    merged: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        merged[r["LOTID"]].append(r)
    assert len(merged) > 20
    sizes = {len(v) for v in merged.values()}
    assert min(sizes) >= 2 and max(sizes) <= 5 and len(sizes) >= 3
    for sources in merged.values():
        assert abs(sum(s["PJ_COMBINEDRATIO"] for s in sources) - 1) < 1e-6
        assert len({s["FINISHEDNAME"] for s in sources}) == 1
        assert re.fullmatch(r"\d{5}[A-Z]\d{3}", sources[0]["FINISHEDNAME"])
    combine = q(tiny_warehouse, "SELECT CONTAINERID, FROMCONTAINERID FROM dwh.DW_MES_HM_LOTMOVEOUT "
                                "WHERE CDONAME = 'CombineLot'")
    assert {(c["CONTAINERID"], c["FROMCONTAINERID"]) for c in combine} == \
        {(r["LOTID"], r["CONTAINERID"]) for r in rows}
    splits = q(tiny_warehouse, "SELECT m.CONTAINERID, m.FROMCONTAINERID, c.SPLITFROMID FROM "
                               "dwh.DW_MES_HM_LOTMOVEOUT m JOIN dwh.DW_MES_CONTAINER c "
                               "ON c.CONTAINERID = m.CONTAINERID WHERE m.CDONAME = 'SplitLot'")
    assert len(splits) > 50 and all(s["FROMCONTAINERID"] == s["SPLITFROMID"] for s in splits)


# --------------------------------------------------------------------------- holds -------
def test_holds(tiny_warehouse: Any) -> None:
    rows = q(tiny_warehouse, "SELECT CONTAINERID, HOLDTXNDATE, RELEASETXNDATE, RELEASEEMP, "
                             "HOLDREASONNAME, FUTUREHOLDCOMMENTS FROM dwh.DW_MES_HOLDRELEASEHISTORY")
    open_ = [r for r in rows if r["RELEASETXNDATE"] is None]
    assert open_ and all(r["RELEASEEMP"] is None for r in open_)
    assert all(r["RELEASETXNDATE"] > r["HOLDTXNDATE"] for r in rows if r["RELEASETXNDATE"])
    reasons = {r["HOLDREASONNAME"] for r in rows}
    quality = {n for n, qual in cat.HOLD_REASONS if qual}
    assert reasons & quality and reasons - quality
    assert any(r["FUTUREHOLDCOMMENTS"] for r in rows)
    per_lot: dict[str, int] = defaultdict(int)
    for r in rows:
        per_lot[r["CONTAINERID"]] += 1
    assert max(per_lot.values()) >= 2

    def near_boundary(ts: datetime) -> bool:
        edge = ts.replace(hour=7, minute=30, second=0)
        return abs((ts - edge).total_seconds()) <= 120

    assert any(near_boundary(r["HOLDTXNDATE"]) for r in rows)


# ----------------------------------------------------------------------- materials -------
def test_materials_consumed_on_the_stations_machines(tiny_warehouse: Any) -> None:
    rows = q(tiny_warehouse, "SELECT m.MATERIALPARTNAME, m.MATERIALLOTNAME, m.QTYCONSUMED, "
                             "COUNT(w.CONTAINERID) AS RAN FROM dwh.DW_MES_LOTMATERIALSHISTORY m "
                             "LEFT JOIN dwh.DW_MES_LOTWIPHISTORY w ON w.CONTAINERID = m.CONTAINERID "
                             "AND w.EQUIPMENTID = m.EQUIPMENTID AND w.SPECNAME = m.SPECNAME "
                             "GROUP BY m.MATERIALPARTNAME, m.MATERIALLOTNAME, m.QTYCONSUMED, "
                             "m.CONTAINERID, m.EQUIPMENTID, m.TXNDATE")
    assert rows and all(r["RAN"] > 0 and r["QTYCONSUMED"] > 0 for r in rows)
    parts = {r["MATERIALPARTNAME"] for r in rows}
    assert {m.part for m in cat.MATERIALS} == parts
    assert all(re.fullmatch(r"\d{6}-\d{2}-\d{3}", r["MATERIALLOTNAME"]) for r in rows)


# ----------------------------------------------------------------------- equipment -------
def test_e10_hours_per_shift(tiny_warehouse: Any) -> None:
    rows = q(tiny_warehouse, "SELECT s.HISTORYID, s.TXNDATE, SUM(s.HOURS) AS H, COUNT(*) AS N, "
                             "MIN(r.OBJECTCATEGORY) AS CAT FROM dwh.DW_MES_RESOURCESTATUS_SHIFT s "
                             "JOIN dwh.DW_MES_RESOURCE r ON r.RESOURCEID = s.HISTORYID "
                             "GROUP BY s.HISTORYID, s.TXNDATE")
    equipment = [r for r in rows if r["CAT"] in ("ASSEMBLY", "WAFERSORT")]
    assert equipment and all(abs(r["H"] - 12) < 1e-6 for r in equipment)
    assert any(r["CAT"] == "CARRIER" for r in rows)
    states = {r["OLDSTATUSNAME"] for r in q(tiny_warehouse, "SELECT DISTINCT OLDSTATUSNAME "
                                                            "FROM dwh.DW_MES_RESOURCESTATUS_SHIFT")}
    assert set(cat.E10_STATES) <= states and any(s.startswith("載具-") for s in states)
    shifts = {r["TXNDATE"].time() for r in rows}
    assert shifts == {datetime(2000, 1, 1, 7, 30).time(), datetime(2000, 1, 1, 19, 30).time()}


def test_jobs_name_lots_that_ran_on_the_machine(tiny_warehouse: Any) -> None:
    jobs = q(tiny_warehouse, "SELECT JOBID, RESOURCEID, CREATEDATE, CONTAINERIDS, CONTAINERNAMES, "
                             "JOBSTATUS FROM dwh.DW_MES_JOB")
    ran: dict[str, set[str]] = defaultdict(set)
    for r in q(tiny_warehouse, "SELECT DISTINCT EQUIPMENTID, CONTAINERID FROM dwh.DW_MES_LOTWIPHISTORY "
                               "WHERE EQUIPMENTID IS NOT NULL"):
        ran[r["EQUIPMENTID"]].add(r["CONTAINERID"])
    named = [j for j in jobs if j["CONTAINERIDS"]]
    assert named and any("," in j["CONTAINERIDS"] for j in named)
    for j in named:
        ids = j["CONTAINERIDS"].split(",")
        assert len(ids) == len(j["CONTAINERNAMES"].split(","))
        assert set(ids) <= ran[j["RESOURCEID"]]
    assert {"COMPLETED", "CANCELLED"} <= {j["JOBSTATUS"] for j in jobs}
    txns = q(tiny_warehouse, "SELECT JOBID, COUNT(*) AS N, COUNT(CAUSECODENAME) AS C, "
                             "COUNT(DISTINCT STAGENAME) AS S FROM dwh.DW_MES_JOBTXNHISTORY GROUP BY JOBID")
    assert len(txns) == len(jobs) and sum(t["N"] >= 2 for t in txns) > 0.9 * len(txns)
    assert any(t["C"] > 0 and t["S"] >= 3 for t in txns)


# ---------------------------------------------------------------------- excursions -------
def _test_rates(wh: Any, affected: set[str]) -> tuple[float, float]:
    loads = {(r["CONTAINERID"]): r["LOAD"] for r in q(
        wh, "SELECT w.CONTAINERID, SUM(w.MOVEINQTY) AS LOAD FROM dwh.DW_MES_LOTWIPHISTORY w "
            "JOIN dwh.DW_MES_SPEC_WORKCENTER_V s ON s.SPEC = w.SPECNAME AND s.WORK_CENTER = w.WORKCENTERNAME "
            "WHERE s.WORK_CENTER_GROUP = :grp AND w.TRACKINQTY = w.MOVEINQTY GROUP BY w.CONTAINERID",
        grp=TEST_GROUP)}
    bad = {(r["CONTAINERID"]): r["BAD"] for r in q(
        wh, "SELECT r.CONTAINERID, SUM(r.REJECTQTY + r.STANDBYQTY + r.QTYTOPROCESS + r.INPROCESSQTY + "
            "r.PROCESSEDQTY + r.DEFECTQTY) AS BAD FROM dwh.DW_MES_LOTREJECTHISTORY r "
            "JOIN dwh.DW_MES_SPEC_WORKCENTER_V s ON s.SPEC = r.SPECNAME AND s.WORK_CENTER = r.WORKCENTERNAME "
            "WHERE s.WORK_CENTER_GROUP = :grp GROUP BY r.CONTAINERID", grp=TEST_GROUP)}
    rate = []
    for inside in (True, False):
        ids = [c for c in loads if (c in affected) == inside]
        rate.append(sum(bad.get(c, 0) for c in ids) / sum(loads[c] for c in ids))
    return rate[0], rate[1]


def _inherit(by_id: dict[str, dict[str, Any]], direct: dict[str, bool]) -> set[str]:
    """Lots carrying the exposure: their own step decides, else the nearest split ancestor
    (or a GD lot's original) that ran the station."""
    out = set()
    for cid, _c in by_id.items():
        node, hops = cid, 0
        while node in by_id and node not in direct and hops < 40:
            row = by_id[node]
            up = row["ORIGINALCONTAINERID"] if (row["MFGORDERNAME"] or "").startswith("GD") \
                else row["SPLITFROMID"]
            if not up or up == node:
                break
            node, hops = up, hops + 1
        if direct.get(node):
            out.add(cid)
    return out


def test_machine_excursion_is_visible_at_final_test(tiny_warehouse: Any,
                                                    manifest: dict[str, Any]) -> None:
    exc = next(e for e in manifest["excursions"] if e["kind"] == "machine")
    assert exc["station_group"] == "焊接_WB" and exc["affected_lots"] > 0
    start = datetime.fromisoformat(exc["window"]["start"])
    end = datetime.fromisoformat(exc["window"]["end"])
    direct: dict[str, bool] = {}
    for r in q(tiny_warehouse, "SELECT w.CONTAINERID, w.EQUIPMENTID, MIN(w.TRACKINTIMESTAMP) AS T "
                               "FROM dwh.DW_MES_LOTWIPHISTORY w JOIN dwh.DW_MES_SPEC_WORKCENTER_V s "
                               "ON s.SPEC = w.SPECNAME AND s.WORK_CENTER = w.WORKCENTERNAME "
                               "WHERE s.WORK_CENTER_GROUP = :grp AND w.EQUIPMENTID IS NOT NULL "
                               "GROUP BY w.CONTAINERID, w.EQUIPMENTID", grp=exc["station_group"]):
        direct[r["CONTAINERID"]] = r["EQUIPMENTID"] == exc["resource_id"] and start <= r["T"] < end
    affected = _inherit(containers(tiny_warehouse), direct)
    inside, outside = _test_rates(tiny_warehouse, affected)
    assert inside >= 3 * outside, (inside, outside)
    tested = scalar(tiny_warehouse, "SELECT COUNT(DISTINCT w.CONTAINERID) FROM dwh.DW_MES_LOTWIPHISTORY w "
                                    "JOIN dwh.DW_MES_SPEC_WORKCENTER_V s ON s.SPEC = w.SPECNAME AND "
                                    "s.WORK_CENTER = w.WORKCENTERNAME WHERE s.WORK_CENTER_GROUP = :grp "
                                    "AND w.EQUIPMENTID IS NOT NULL", grp=TEST_GROUP)
    assert tested > exc["affected_lots"] > 10


def test_material_excursion_is_visible_at_final_test(tiny_warehouse: Any,
                                                     manifest: dict[str, Any]) -> None:
    exc = next(e for e in manifest["excursions"] if e["kind"] == "material")
    direct: dict[str, bool] = {}
    for r in q(tiny_warehouse, "SELECT CONTAINERID, MATERIALLOTNAME FROM dwh.DW_MES_LOTMATERIALSHISTORY "
                               "WHERE MATERIALPARTNAME = :part", part=exc["material_part"]):
        direct[r["CONTAINERID"]] = direct.get(r["CONTAINERID"], False) or \
            r["MATERIALLOTNAME"] == exc["material_lot"]
    affected = _inherit(containers(tiny_warehouse), direct)
    assert affected
    inside, outside = _test_rates(tiny_warehouse, affected)
    assert inside >= 3 * outside, (inside, outside)


def _at_group(wh: Any, grp: str) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per lot at a station group: its load (largest TRACKINQTY) and REJECTQTY by reason."""
    join = ("JOIN dwh.DW_MES_SPEC_WORKCENTER_V s ON s.SPEC = {t}.SPECNAME AND "
            "s.WORK_CENTER = {t}.WORKCENTERNAME WHERE s.WORK_CENTER_GROUP = :grp")
    loads = {r["CONTAINERID"]: r["LOAD"] for r in q(
        wh, "SELECT w.CONTAINERID, MAX(w.TRACKINQTY) AS LOAD FROM dwh.DW_MES_LOTWIPHISTORY w "
            f"{join.format(t='w')} AND w.EQUIPMENTID IS NOT NULL GROUP BY w.CONTAINERID", grp=grp)}
    lost: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in q(wh, "SELECT r.CONTAINERID, r.LOSSREASONNAME, r.REJECTQTY FROM dwh.DW_MES_LOTREJECTHISTORY r "
                   f"{join.format(t='r')}", grp=grp):
        lost[r["CONTAINERID"]][r["LOSSREASONNAME"]] += r["REJECTQTY"] or 0
    return loads, lost


def test_forward_excursion_is_visible_downstream(tiny_warehouse: Any, manifest: dict[str, Any]) -> None:
    """Lots molded on the forward case's machine inside its window (and their split children)
    lose units under the front reason at molding, and at plating many times the others' share
    under the downstream reason."""
    exc = next(e for e in manifest["excursions"] if e["kind"] == "forward")
    assert (exc["station_group"], exc["downstream_group"]) == ("成型", "電鍍")
    start = datetime.fromisoformat(exc["window"]["start"])
    end = datetime.fromisoformat(exc["window"]["end"])
    direct: dict[str, bool] = {}
    for r in q(tiny_warehouse, "SELECT w.CONTAINERID, w.EQUIPMENTID, MIN(w.TRACKINTIMESTAMP) AS T "
                               "FROM dwh.DW_MES_LOTWIPHISTORY w JOIN dwh.DW_MES_SPEC_WORKCENTER_V s "
                               "ON s.SPEC = w.SPECNAME AND s.WORK_CENTER = w.WORKCENTERNAME "
                               "WHERE s.WORK_CENTER_GROUP = :grp AND w.EQUIPMENTID IS NOT NULL "
                               "GROUP BY w.CONTAINERID, w.EQUIPMENTID", grp=exc["station_group"]):
        hit = r["EQUIPMENTID"] == exc["resource_id"] and start <= r["T"] < end
        direct[r["CONTAINERID"]] = direct.get(r["CONTAINERID"], False) or hit
    by_id = containers(tiny_warehouse)
    affected = {c for c in _inherit(by_id, direct) if not (by_id[c]["MFGORDERNAME"] or "").startswith("GD")}
    assert len(affected) > 10
    for grp, reason in ((exc["station_group"], exc["front_reason"]),
                        (exc["downstream_group"], exc["downstream_reason"])):
        loads, lost = _at_group(tiny_warehouse, grp)
        ran = affected & set(loads)
        assert len(ran) > 10 and sum(lost[c][reason] > 0 for c in ran) >= 0.6 * len(ran), grp
    loads, lost = _at_group(tiny_warehouse, exc["downstream_group"])
    share = {c: sum(lost[c].values()) / load for c, load in loads.items() if load}
    inside = [v for c, v in share.items() if c in affected]
    outside = [v for c, v in share.items() if c not in affected]
    assert sum(inside) / len(inside) >= 10 * sum(outside) / len(outside)
    assert exc["downstream_rate_affected"] >= 10 * exc["downstream_rate_baseline"]


# --------------------------------------------------------------------- determinism -------
def _generate(path: Path, seed: int) -> dict[str, Any]:
    wh = Warehouse(f"duckdb:///{path}", read_only=False)
    try:
        return generate(wh, scale="tiny", seed=seed, end_date=date(2026, 6, 30))
    finally:
        wh.close()


def _differences(a: Path, b: Path) -> dict[str, int]:
    conn = duckdb.connect()
    try:
        conn.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        conn.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        out = {}
        for name in table_names():
            diff = conn.execute(
                f"SELECT (SELECT COUNT(*) FROM (SELECT * FROM a.dwh.{name} EXCEPT ALL "
                f"SELECT * FROM b.dwh.{name})) + (SELECT COUNT(*) FROM (SELECT * FROM b.dwh.{name} "
                f"EXCEPT ALL SELECT * FROM a.dwh.{name}))").fetchall()[0][0]
            out[name] = int(diff)
        return out
    finally:
        conn.close()


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a.duckdb", 7)
    second = _generate(tmp_path / "b.duckdb", 7)
    _generate(tmp_path / "c.duckdb", 8)
    assert set(_differences(tmp_path / "a.duckdb", tmp_path / "b.duckdb").values()) == {0}
    other = _differences(tmp_path / "a.duckdb", tmp_path / "c.duckdb")
    assert other["DW_MES_CONTAINER"] > 0 and other["DW_MES_LOTWIPHISTORY"] > 0
    volatile = {"generated_at", "generation_seconds"}
    assert {k: v for k, v in first.items() if k not in volatile} == \
        {k: v for k, v in second.items() if k not in volatile}
    saved = (tmp_path / "a.duckdb.manifest.json")
    assert saved.exists()
    wh = Warehouse(f"duckdb:///{tmp_path / 'a.duckdb'}")
    try:
        assert manifest_path(wh) == saved and load_manifest(wh) == first
    finally:
        wh.close()


def test_span_and_default_end_date(tiny_warehouse: Any, manifest: dict[str, Any]) -> None:
    first, last = q(tiny_warehouse, "SELECT MIN(MOVEINTIMESTAMP) AS A, MAX(MOVEINTIMESTAMP) AS B "
                                    "FROM dwh.DW_MES_LOTWIPHISTORY")[0].values()
    start = datetime.fromisoformat(manifest["start_date"]).replace(hour=7, minute=30)
    assert start <= first and last < datetime(2026, 7, 1, 7, 30)
    assert (date(2026, 6, 30) - date.fromisoformat(manifest["start_date"])) == timedelta(days=74)


def test_unknown_scale_is_refused(tmp_path: Path) -> None:
    wh = Warehouse(f"duckdb:///{tmp_path / 'x.duckdb'}", read_only=False)
    try:
        with pytest.raises(ValueError, match="unknown scale"):
            generate(wh, scale="huge")
    finally:
        wh.close()
