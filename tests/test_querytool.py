"""Query tool on the tiny warehouse (DuckDB and PostgreSQL): every lookup equals a direct SQL
computation — adjacent-lot windows at product-type changes, lot → equipment with split-parent
fallback, split / merge history bounds, equipment-period hours and load folding — plus the
job (202) paths, CSV exports and validation 400s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mesdash.app import create_app
from mesdash.core.batch import decompose_by_time_range
from mesdash.core.batch.dataset import drop_dataset, plan_hash
from mesdash.core.db import Warehouse, get_warehouse, reset_warehouse
from mesdash.core.factory_day import range_bounds
from mesdash.core.jobs import job_status
from mesdash.querytool import service, split_merge
from mesdash.querytool.service import adjacent_window
from mesdash.settings import reset_settings

BOM = b"\xef\xbb\xbf"
START, END = date(2026, 5, 1), date(2026, 5, 31)


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_url: str) -> Iterator[Path]:
    """A private spool (datasets, job records) and the process warehouse on the tiny data
    (job functions use ``get_warehouse()``)."""
    monkeypatch.setenv("MESDASH_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("MESDASH_DATABASE_URL", tiny_url)
    reset_settings()
    reset_warehouse()
    yield tmp_path / "spool"
    reset_warehouse()


@pytest.fixture
def client(tiny_warehouse: Warehouse, spool: Path) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as test_client:
        yield test_client


def _rows(wh: Warehouse, sql: str, **params: Any) -> list[dict[str, Any]]:
    return wh.read_sql_df(sql, params).to_dicts()


def _wait_finished(job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job_status(job_id)
        if status["status"] in ("finished", "failed", "cancelled"):
            assert status["status"] == "finished", status
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _machines(wh: Warehouse, n: int = 3) -> list[str]:
    rows = _rows(
        wh,
        "SELECT h.EQUIPMENTID, COUNT(*) AS N FROM dwh.DW_MES_LOTWIPHISTORY h "
        "WHERE h.EQUIPMENTID IS NOT NULL GROUP BY h.EQUIPMENTID ORDER BY COUNT(*) DESC, h.EQUIPMENTID "
        "FETCH FIRST :n ROWS ONLY",
        n=n,
    )
    return [r["EQUIPMENTID"] for r in rows]


# ------------------------------------------------------------------ adjacent lots -------
def _load(cid: str, product: str | None) -> dict[str, Any]:
    return {"CONTAINERID": cid, "PJ_TYPE": product}


@pytest.mark.parametrize(
    ("types", "target", "expected", "stops"),
    [
        # same type for 6 before and 3 after: extended to the first different lot each side
        ("BAAAAAAXAAAC", 7, list(range(-7, 5)), ("type_change", "type_change")),
        # a change inside ±3 keeps exactly 3 a side
        ("ABAXBAA", 3, [-3, -2, -1, 0, 1, 2, 3], ("type_change", "type_change")),
        # never a change: up to the edge of the candidates
        ("AAXAA", 2, [-2, -1, 0, 1, 2], ("window_edge", "window_edge")),
    ],
)
def test_window_rule(types: str, target: int, expected: list[int], stops: tuple[str, str]) -> None:
    loads = [_load(f"c{i}", "A" if t in "AX" else t) for i, t in enumerate(types)]
    rows, stop = adjacent_window(loads, target)
    assert [r["RELATIVE_POSITION"] for r in rows] == expected
    assert [r["CONTAINERID"] for r in rows] == [f"c{target + p}" for p in expected]
    assert (stop["before"], stop["after"]) == stops


def test_window_rule_caps_each_side() -> None:
    loads = [_load(f"c{i}", "A") for i in range(20)]
    rows, stop = adjacent_window(loads, 10, 3, 4)
    assert [r["RELATIVE_POSITION"] for r in rows] == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert stop == {"before": "max_lots", "after": "max_lots"}


def _expected_side(neighbours: list[dict[str, Any]], product: Any, least: int = 3) -> int:
    """How many neighbours (nearest first) one side keeps: at least ``least``, extended to
    the first lot of another product type (independent of the service's loop)."""
    first = next((i for i, n in enumerate(neighbours, 1) if n["PJ_TYPE"] != product), None)
    return min(len(neighbours), max(least, first) if first else len(neighbours))


def _direct_machine_loads(wh: Warehouse, equipment: str, around: datetime) -> list[dict[str, Any]]:
    raw = _rows(
        wh,
        "SELECT h.CONTAINERID, h.SPECNAME, h.TRACKINTIMESTAMP, h.TRACKOUTTIMESTAMP, h.TRACKINQTY, "
        "h.TRACKOUTQTY, h.EQUIPMENTNAME, c.PJ_TYPE FROM dwh.DW_MES_LOTWIPHISTORY h "
        "LEFT JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = h.CONTAINERID "
        "WHERE h.EQUIPMENTID = :e AND h.TRACKINTIMESTAMP >= :lo AND h.TRACKINTIMESTAMP <= :hi",
        e=equipment,
        lo=around - timedelta(days=7),
        hi=around + timedelta(days=7),
    )
    folded: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in raw:
        key = (r["CONTAINERID"], r["SPECNAME"], r["TRACKINTIMESTAMP"])
        load = folded.setdefault(key, {**r, "LOAD": 0.0, "OUTPUT": 0.0, "OUT": None})
        load["LOAD"] = max(load["LOAD"], float(r["TRACKINQTY"] or 0))
        load["OUTPUT"] += float(r["TRACKOUTQTY"] or 0)
        if r["TRACKOUTTIMESTAMP"] and (load["OUT"] is None or r["TRACKOUTTIMESTAMP"] > load["OUT"]):
            load["OUT"] = r["TRACKOUTTIMESTAMP"]
    return sorted(folded.values(), key=lambda x: (x["TRACKINTIMESTAMP"], x["CONTAINERID"], x["SPECNAME"]))


def _direct_step_rejects(wh: Warehouse, load: dict[str, Any]) -> float:
    sql = (
        "SELECT SUM(COALESCE(REJECTQTY, 0) + COALESCE(STANDBYQTY, 0) + COALESCE(QTYTOPROCESS, 0) "
        "+ COALESCE(INPROCESSQTY, 0) + COALESCE(PROCESSEDQTY, 0)) AS Q FROM dwh.DW_MES_LOTREJECTHISTORY "
        "WHERE CONTAINERID = :c AND SPECNAME = :s AND EQUIPMENTNAME = :n AND TXNDATE >= :t"
    )
    params = {"c": load["CONTAINERID"], "s": load["SPECNAME"], "n": load["EQUIPMENTNAME"], "t": load["TRACKINTIMESTAMP"]}
    if load["OUT"] is not None:
        sql += " AND TXNDATE <= :o"
        params["o"] = load["OUT"]
    return float(wh.read_sql_df(sql, params).rows[0][0] or 0)


def test_adjacent_lots_equal_direct_sql(tiny_warehouse: Warehouse) -> None:
    wh = tiny_warehouse
    lots = _rows(wh, "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' ORDER BY CONTAINERID")
    extended = plain = None
    for lot in lots[::7]:
        for anchor in service.adjacent_lots(wh, lot["CONTAINERID"])["anchors"]:
            sides = [p for p in (r["RELATIVE_POSITION"] for r in anchor["lots"])]
            if min(sides) < -3 or max(sides) > 3:
                extended = extended or (lot["CONTAINERID"], anchor)
            elif min(sides) == -3 and max(sides) == 3:
                plain = plain or (lot["CONTAINERID"], anchor)
        if extended and plain:
            break
    assert extended and plain, "the tiny warehouse has both kinds of window"
    for cid, anchor in (extended, plain):
        loads = _direct_machine_loads(wh, anchor["equipment_id"], anchor["trackin_time"])
        target = next(
            i for i, x in enumerate(loads)
            if (x["CONTAINERID"], x["SPECNAME"], x["TRACKINTIMESTAMP"]) == (cid, anchor["spec_name"], anchor["trackin_time"])
        )
        product = loads[target]["PJ_TYPE"]
        n_before = _expected_side(loads[:target][::-1], product)
        n_after = _expected_side(loads[target + 1 :], product)
        window = loads[target - n_before : target + n_after + 1]
        got = anchor["lots"]
        assert [r["RELATIVE_POSITION"] for r in got] == list(range(-n_before, n_after + 1))
        assert [r["CONTAINERID"] for r in got] == [x["CONTAINERID"] for x in window]
        assert [r["LOAD_QTY"] for r in got] == [x["LOAD"] for x in window]
        assert [r["OUTPUT_QTY"] for r in got] == pytest.approx([x["OUTPUT"] for x in window])
        assert [r["REJECT_QTY"] for r in got] == pytest.approx([_direct_step_rejects(wh, x) for x in window])
        assert anchor["product_type"] == product


def test_adjacent_lots_api_and_csv(client: TestClient, tiny_warehouse: Warehouse) -> None:
    cid = _rows(tiny_warehouse, "SELECT MIN(CONTAINERID) AS C FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL")[0]["C"]
    body = client.get("/api/query-tool/adjacent-lots", params={"container_id": cid}).json()
    anchor = body["anchors"][0]
    one = client.get(
        "/api/query-tool/adjacent-lots", params={"container_id": cid, "equipment_id": anchor["equipment_id"]}
    ).json()
    assert {a["equipment_id"] for a in one["anchors"]} == {anchor["equipment_id"]}
    resp = client.get("/api/query-tool/adjacent-lots", params={"container_id": cid, "format": "csv"})
    assert resp.status_code == 200 and resp.content.startswith(BOM)
    lines = resp.content[len(BOM) :].decode().splitlines()
    assert lines[0].startswith("RELATIVE_POSITION,EQUIPMENTID")
    assert len(lines) - 1 == sum(len(a["lots"]) for a in body["anchors"])


# ------------------------------------------------------------------ lot → equipment -----
def _deep_child(wh: Warehouse) -> tuple[str, list[str]]:
    """A lot with no machine history whose split chain reaches one that has some, ≥ 3 up."""
    parents = {r["CONTAINERID"]: r["SPLITFROMID"] for r in _rows(wh, "SELECT CONTAINERID, SPLITFROMID FROM dwh.DW_MES_CONTAINER")}
    ran = {r["CONTAINERID"] for r in _rows(wh, "SELECT DISTINCT CONTAINERID FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL")}
    for cid in sorted(parents):
        chain, node = [], cid
        while parents.get(node) and len(chain) < 10 and parents[node] not in chain:
            node = parents[node]
            chain.append(node)
            if node in ran:
                break
        if cid not in ran and chain and chain[-1] in ran and len(chain) >= 3:
            return cid, chain
    raise AssertionError("no deep split chain in the tiny warehouse")


def _direct_machines(wh: Warehouse, cid: str) -> dict[str, tuple[datetime, datetime]]:
    rows = _rows(
        wh,
        "SELECT EQUIPMENTID, MIN(TRACKINTIMESTAMP) AS F, MAX(TRACKOUTTIMESTAMP) AS L FROM dwh.DW_MES_LOTWIPHISTORY "
        "WHERE CONTAINERID = :c AND EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL GROUP BY EQUIPMENTID",
        c=cid,
    )
    return {r["EQUIPMENTID"]: (r["F"], r["L"]) for r in rows}


def _name(wh: Warehouse, cid: str) -> str:
    return str(_rows(wh, "SELECT CONTAINERNAME FROM dwh.DW_MES_CONTAINER WHERE CONTAINERID = :c", c=cid)[0]["CONTAINERNAME"])


def test_lot_equipment_own_history_and_parent_fallback(client: TestClient, tiny_warehouse: Warehouse) -> None:
    wh = tiny_warehouse
    child, chain = _deep_child(wh)
    own = _rows(wh, "SELECT MIN(CONTAINERID) AS C FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL")[0]["C"]
    body = client.post(
        "/api/query-tool/lot-equipment",
        json={"input_type": "lot_id", "values": [_name(wh, own), _name(wh, child), "NO-SUCH-LOT"]},
    ).json()
    assert body["not_found"] == ["NO-SUCH-LOT"]
    mine = [r for r in body["data"] if r["CONTAINERID"] == own]
    assert {r["SOURCE_DEPTH"] for r in mine} == {0}
    direct = _direct_machines(wh, own)
    assert {r["EQUIPMENTID"]: (r["FIRST_TRACKIN"], r["LAST_TRACKOUT"]) for r in mine} == {
        k: (first.isoformat(), last.isoformat() if last else None) for k, (first, last) in direct.items()
    }
    inherited = [r for r in body["data"] if r["CONTAINERID"] == child]
    assert inherited and {r["SOURCE_CONTAINERID"] for r in inherited} == {chain[-1]}
    assert {r["SOURCE_DEPTH"] for r in inherited} == {len(chain)}
    ancestor = _direct_machines(wh, chain[-1])
    assert {r["EQUIPMENTID"] for r in inherited} == set(ancestor)
    assert child in body["diagnostics"]["lots_using_parents"]
    group = inherited[0]["WORKCENTER_GROUP"]
    only = client.post(
        "/api/query-tool/lot-equipment",
        json={"input_type": "lot_id", "values": [_name(wh, child)], "workcenter_groups": [group]},
    ).json()
    assert only["data"] and {r["WORKCENTER_GROUP"] for r in only["data"]} == {group}


def test_lot_equipment_by_work_order(client: TestClient, tiny_warehouse: Warehouse) -> None:
    order = _rows(tiny_warehouse, "SELECT MIN(MFGORDERNAME) AS W FROM dwh.DW_MES_CONTAINER WHERE MFGORDERNAME LIKE 'GA%'")[0]["W"]
    lots = {r["CONTAINERID"] for r in _rows(tiny_warehouse, "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE MFGORDERNAME = :w AND OBJECTTYPE = 'LOT'", w=order)}
    resp = client.post("/api/query-tool/lot-equipment", params={"format": "csv"}, json={"input_type": "work_order", "values": [order]})
    assert resp.status_code == 200 and resp.content.startswith(BOM)
    body = client.post("/api/query-tool/lot-equipment", json={"input_type": "work_order", "values": [order]}).json()
    assert {lot["container_id"] for lot in body["lots"]} == lots
    assert {r["CONTAINERID"] for r in body["data"]} <= lots
    assert len(resp.content.decode("utf-8-sig").splitlines()) == body["count"] + 1


# ------------------------------------------------------------------ split / merge -------
def _split_lot(wh: Warehouse) -> tuple[str, datetime]:
    row = _rows(
        wh,
        "SELECT FROMCONTAINERID AS C, MAX(TXNDATE) AS T, COUNT(*) AS N FROM dwh.DW_MES_HM_LOTMOVEOUT "
        "WHERE CDONAME IN ('SplitLot', 'CombineLot') GROUP BY FROMCONTAINERID ORDER BY COUNT(*) DESC, FROMCONTAINERID "
        "FETCH FIRST 1 ROWS ONLY",
    )[0]
    return row["C"], row["T"]


def _direct_history(wh: Warehouse, cid: str, since: datetime | None = None) -> list[str]:
    sql = (
        "SELECT HISTORYMAINLINEID FROM dwh.DW_MES_HM_LOTMOVEOUT WHERE CDONAME IN ('SplitLot', 'CombineLot') "
        "AND (CONTAINERID = :c OR FROMCONTAINERID = :c)"
    )
    params: dict[str, Any] = {"c": cid}
    if since is not None:
        sql += " AND TXNDATE >= :s"
        params["s"] = since
    return sorted(r["HISTORYMAINLINEID"] for r in _rows(wh, sql, **params))


def test_split_merge_fast_mode_is_bounded(tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = tiny_warehouse
    cid, last = _split_lot(wh)
    text = wh.sql("querytool/split_merge_recent")
    assert "m.TXNDATE >= :since AND m.TXNDATE < :until" in text and "FETCH FIRST :max_rows ROWS ONLY" in text
    seen: list[dict[str, Any]] = []
    original = wh.read_sql_df

    def spy(sql: str, params: Any = None, timeout_seconds: Any = None) -> Any:
        seen.append(dict(params))
        return original(sql, params, timeout_seconds)

    monkeypatch.setattr(wh, "read_sql_df", spy)
    now = last + timedelta(days=1)
    result = split_merge.fast_history(wh, cid, now=lambda: now)
    assert seen[-1]["since"] == now - timedelta(days=183) and seen[-1]["max_rows"] == 501
    assert sorted(r["HISTORYMAINLINEID"] for r in result["data"]) == _direct_history(wh, cid, now - timedelta(days=183))
    assert result["count"] > 0 and result["quality"]["status"] == "complete"
    assert {r["EVENT"] for r in result["data"]} <= {"split", "merge"}
    later = split_merge.fast_history(wh, cid, now=lambda: last + timedelta(days=200))
    assert later["count"] == 0  # everything is older than the window: not read
    monkeypatch.setattr(split_merge, "FAST_MAX_ROWS", 1)
    capped = split_merge.fast_history(wh, cid, now=lambda: now)
    assert capped["count"] == 1 and capped["quality"]["status"] == "truncated"


def test_split_merge_fast_mode_api_and_csv(client: TestClient, tiny_warehouse: Warehouse) -> None:
    cid, _ = _split_lot(tiny_warehouse)
    body = client.get("/api/query-tool/split-merge-history", params={"container_id": cid}).json()
    assert body["mode"] == "fast" and body["window"]["since"] < body["window"]["until"]
    csv = client.get("/api/query-tool/split-merge-history", params={"container_id": cid, "format": "csv"})
    assert csv.content.startswith(BOM) and len(csv.content.decode("utf-8-sig").splitlines()) == body["count"] + 1


def test_split_merge_full_mode_runs_as_a_job(client: TestClient, tiny_warehouse: Warehouse) -> None:
    cid, _ = _split_lot(tiny_warehouse)
    resp = client.get("/api/query-tool/split-merge-history", params={"container_id": cid, "mode": "full"})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert set(accepted) == {"job_id", "kind", "status_url", "stream_url", "result_url"}
    _wait_finished(accepted["job_id"])
    result = client.get(accepted["result_url"]).json()["result"]
    assert sorted(r["HISTORYMAINLINEID"] for r in result["data"]) == _direct_history(tiny_warehouse, cid)
    csv = client.get(result["csv_url"])
    assert csv.status_code == 200 and csv.content.startswith(BOM)
    assert len(csv.content.decode("utf-8-sig").splitlines()) == result["count"] + 1


# ------------------------------------------------------------------ equipment period ----
def _period(
    client: TestClient, machines: list[str], query_type: str, start: date = START, end: date = END, **params: str
) -> Any:
    payload = {"equipment_ids": machines, "start_date": start.isoformat(), "end_date": end.isoformat(), "query_type": query_type}
    return client.post("/api/query-tool/equipment-period", json=payload, params=params)


def _direct_hours(wh: Warehouse, machines: list[str], start: date, end: date) -> dict[str, dict[str, float]]:
    lo, hi = range_bounds(start, end)
    hours: dict[str, dict[str, float]] = {m: {} for m in machines}
    for m in machines:
        for r in _rows(
            wh,
            "SELECT OLDSTATUSNAME AS S, SUM(HOURS) AS H FROM dwh.DW_MES_RESOURCESTATUS_SHIFT "
            "WHERE HISTORYID = :m AND TXNDATE >= :lo AND TXNDATE < :hi GROUP BY OLDSTATUSNAME",
            m=m, lo=lo, hi=hi,
        ):
            hours[m][r["S"]] = float(r["H"])
    return hours


def _check_hours(data: list[dict[str, Any]], direct: dict[str, dict[str, float]]) -> None:
    by_machine = {r["EQUIPMENTID"]: r for r in data}
    assert set(by_machine) == set(direct)
    for machine, states in direct.items():
        row = by_machine[machine]
        for state in ("PRD", "SBY", "UDT", "SDT", "EGT", "NST"):
            assert row[f"{state}_HOURS"] == pytest.approx(states.get(state, 0.0))
        busy = sum(states.get(s, 0.0) for s in ("PRD", "SBY", "UDT", "SDT", "EGT"))
        assert row["OU_PCT"] == pytest.approx(100 * states.get("PRD", 0.0) / busy)


def test_status_hours_equal_direct_sql(client: TestClient, tiny_warehouse: Warehouse) -> None:
    machines = _machines(tiny_warehouse)
    body = _period(client, machines, "status_hours").json()
    _check_hours(body["data"], _direct_hours(tiny_warehouse, machines, START, END))
    assert body["quality"]["status"] == "complete" and body["chunks"] == 1
    before = tiny_warehouse.stats.count
    again = _period(client, list(reversed(machines)), "status_hours").json()
    assert tiny_warehouse.stats.count == before, "an equal request is answered from the chunk cache"
    assert again["query_id"] == body["query_id"]


def test_period_chunks_and_dataset_live_in_redis(
    redis_namespace: str, redis_url: str, client: TestClient, tiny_warehouse: Warehouse
) -> None:
    import redis

    machines = _machines(tiny_warehouse, 2)
    body = _period(client, machines, "lots").json()
    keys = {k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=f"{redis_namespace}:*")}
    chunk_hash = plan_hash(body["query_id"], decompose_by_time_range(START, END, (END - START).days + 1))
    assert f"{redis_namespace}:batch:querytool-period:{chunk_hash}:chunk:0" in keys
    assert any(k.startswith(f"{redis_namespace}:dataset:querytool-period:{body['query_id']}:arrow") for k in keys)
    before = tiny_warehouse.stats.count
    page = client.get(f"/api/query-tool/equipment-period/{body['query_id']}", params={"offset": 1, "limit": 2}).json()
    assert page["data"] == body["data"][1:3] and page["count"] == body["count"]
    assert tiny_warehouse.stats.count == before, "views read the kept dataset, not the warehouse"


def test_lots_fold_partial_trackouts(client: TestClient, tiny_warehouse: Warehouse) -> None:
    machines = _machines(tiny_warehouse, 2)
    body = _period(client, machines, "lots").json()
    lo, hi = range_bounds(START, END)
    ids = ", ".join(f":m{i}" for i in range(len(machines)))
    direct = _rows(
        tiny_warehouse,
        "SELECT EQUIPMENTID, CONTAINERID, SPECNAME, TRACKINTIMESTAMP, MAX(TRACKINQTY) AS L, SUM(TRACKOUTQTY) AS O, "
        f"COUNT(*) AS N FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IN ({ids}) AND TRACKINTIMESTAMP >= :lo "
        "AND TRACKINTIMESTAMP < :hi GROUP BY EQUIPMENTID, CONTAINERID, SPECNAME, TRACKINTIMESTAMP",
        lo=lo, hi=hi, **{f"m{i}": m for i, m in enumerate(machines)},
    )
    key = lambda r: (r["EQUIPMENTID"], r["CONTAINERID"], r["SPECNAME"], str(r["TRACKINTIMESTAMP"]).replace(" ", "T"))  # noqa: E731
    got = {key(r): (r["LOAD_QTY"], r["OUTPUT_QTY"], r["TRACKOUT_ROWS"]) for r in body["data"]}
    want = {key(r): (float(r["L"]), pytest.approx(float(r["O"] or 0)), r["N"]) for r in direct}
    assert body["count"] == len(direct) == len(got) and got == want
    assert any(n > 1 for _, _, n in got.values()), "some loads had partial track-outs"


def test_materials_rejects_and_jobs_equal_direct_sql(client: TestClient, tiny_warehouse: Warehouse) -> None:
    wh = tiny_warehouse
    machines = _machines(wh, 3)
    lo, hi = range_bounds(START, END)
    binds = {"lo": lo, "hi": hi, **{f"m{i}": m for i, m in enumerate(machines)}}
    ids = ", ".join(f":m{i}" for i in range(len(machines)))
    materials = _period(client, machines, "materials").json()
    direct = _rows(
        wh,
        "SELECT EQUIPMENTID, MATERIALLOTNAME, SUM(QTYCONSUMED) AS Q, COUNT(DISTINCT CONTAINERID) AS N "
        f"FROM dwh.DW_MES_LOTMATERIALSHISTORY WHERE EQUIPMENTID IN ({ids}) AND TXNDATE >= :lo AND TXNDATE < :hi "
        "GROUP BY EQUIPMENTID, MATERIALPARTNAME, MATERIALLOTNAME",
        **binds,
    )
    got = {(r["EQUIPMENTID"], r["MATERIALLOTNAME"]): (pytest.approx(r["QTYCONSUMED"]), r["LOT_COUNT"]) for r in materials["data"]}
    assert got == {(r["EQUIPMENTID"], r["MATERIALLOTNAME"]): (float(r["Q"]), r["N"]) for r in direct} and got
    rejects = _period(client, machines, "rejects").json()
    direct_rejects = _rows(
        wh,
        "SELECT COUNT(*) AS N FROM dwh.DW_MES_LOTREJECTHISTORY r JOIN (SELECT DISTINCT EQUIPMENTID, CONTAINERID, "
        f"WORKCENTERNAME FROM dwh.DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IN ({ids}) AND TRACKINTIMESTAMP >= :lo "
        "AND TRACKINTIMESTAMP < :hi) u ON u.CONTAINERID = r.CONTAINERID AND u.WORKCENTERNAME = r.WORKCENTERNAME",
        **binds,
    )[0]["N"]
    assert rejects["count"] == direct_rejects > 0
    jobs = _period(client, machines, "jobs").json()
    direct_jobs = _rows(
        wh, f"SELECT JOBID FROM dwh.DW_MES_JOB WHERE RESOURCEID IN ({ids}) AND CREATEDATE >= :lo AND CREATEDATE < :hi", **binds
    )
    assert sorted(r["JOBID"] for r in jobs["data"]) == sorted(r["JOBID"] for r in direct_jobs)
    resp = _period(client, machines, "jobs", format="csv")
    assert resp.content.startswith(BOM) and len(resp.content.decode("utf-8-sig").splitlines()) == len(direct_jobs) + 1


def test_long_range_runs_as_a_job_in_chunks(client: TestClient, tiny_warehouse: Warehouse) -> None:
    machines = _machines(tiny_warehouse, 2)
    start, end = date(2026, 4, 1), date(2026, 6, 30)  # 91 days > BATCH_QUERY_TIME_THRESHOLD_DAYS
    resp = _period(client, machines, "status_hours", start, end)
    assert resp.status_code == 202, resp.text
    status = _wait_finished(resp.json()["job_id"])
    assert status["progress"]["total"] == 3  # three 31-day factory-day chunks
    result = client.get(resp.json()["result_url"]).json()["result"]
    view = client.get(result["view_url"]).json()
    assert view["chunks"] == 3 and view["quality"]["status"] == "complete"
    _check_hours(view["data"], _direct_hours(tiny_warehouse, machines, start, end))
    csv = client.get(result["view_url"], params={"format": "csv"})
    assert csv.content.startswith(BOM) and len(csv.content.decode("utf-8-sig").splitlines()) == 3
    assert client.get("/api/query-tool/equipment-period/0123456789abcdef").status_code == 410
    assert _period(client, machines, "status_hours", start, end).json()["job_id"] == resp.json()["job_id"]
    drop_dataset("querytool-period", result["query_id"])  # e.g. a restarted process without Redis
    again = _period(client, machines, "status_hours", start, end).json()
    assert again["job_id"] != resp.json()["job_id"], "a finished job without its dataset runs again"
    _wait_finished(again["job_id"])
    _check_hours(client.get(result["view_url"]).json()["data"], _direct_hours(tiny_warehouse, machines, start, end))


def test_long_range_job_on_an_rq_worker(
    redis_namespace: str, client: TestClient, tiny_warehouse: Warehouse
) -> None:
    import redis
    from rq import SimpleWorker

    from mesdash.core.jobs import rq_queue_name
    from mesdash.settings import get_settings

    machines = _machines(tiny_warehouse, 2)
    start, end = date(2026, 4, 10), date(2026, 6, 20)
    resp = _period(client, machines, "status_hours", start, end)
    assert resp.status_code == 202 and job_status(resp.json()["job_id"])["status"] == "queued"
    connection = redis.Redis.from_url(str(get_settings().redis_url))
    SimpleWorker([rq_queue_name("query-tool")], connection=connection).work(burst=True)
    connection.close()
    status = job_status(resp.json()["job_id"])
    assert status["status"] == "finished" and status["progress"]["completed"] == 3
    view = client.get(status["result"]["view_url"]).json()
    _check_hours(view["data"], _direct_hours(tiny_warehouse, machines, start, end))


# ------------------------------------------------------------------ recent jobs ---------
def test_equipment_recent_jobs(client: TestClient, tiny_warehouse: Warehouse) -> None:
    row = _rows(tiny_warehouse, "SELECT RESOURCEID, MAX(CREATEDATE) AS T FROM dwh.DW_MES_JOB GROUP BY RESOURCEID ORDER BY COUNT(*) DESC, RESOURCEID FETCH FIRST 1 ROWS ONLY")[0]
    as_of = row["T"].date()
    until = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    direct = _rows(
        tiny_warehouse,
        "SELECT JOBID FROM dwh.DW_MES_JOB WHERE RESOURCEID = :r AND CREATEDATE >= :s AND CREATEDATE < :u "
        "ORDER BY CREATEDATE DESC, JOBID",
        r=row["RESOURCEID"], s=until - timedelta(days=30), u=until,
    )
    body = client.get(f"/api/query-tool/equipment-recent-jobs/{row['RESOURCEID']}", params={"as_of": as_of.isoformat()}).json()
    assert [j["JOBID"] for j in body["data"]] == [r["JOBID"] for r in direct][:5] and body["data"]
    wide = client.get(f"/api/query-tool/equipment-recent-jobs/{row['RESOURCEID']}", params={"as_of": as_of.isoformat(), "days": 730, "limit": 2}).json()
    assert wide["count"] == 2
    csv = client.get(f"/api/query-tool/equipment-recent-jobs/{row['RESOURCEID']}", params={"as_of": as_of.isoformat(), "format": "csv"})
    assert csv.content.startswith(BOM) and csv.content.decode("utf-8-sig").splitlines()[0].startswith("JOBID,RESOURCEID")
    assert len(csv.content.decode("utf-8-sig").splitlines()) == body["count"] + 1


def test_equipment_picker(client: TestClient) -> None:
    body = client.get("/api/query-tool/equipment", params={"q": "gd"}).json()
    assert body["data"] and all(
        "GD" in (r["RESOURCENAME"] or "").upper() or "GD" in (r["WORKCENTERNAME"] or "").upper() for r in body["data"]
    )
    assert {r["OBJECTCATEGORY"] for r in body["data"]} <= {"ASSEMBLY", "WAFERSORT"}


# ------------------------------------------------------------------ validation ----------
def _period_body(**change: Any) -> dict[str, Any]:
    return {"equipment_ids": ["a"], "start_date": "2026-05-01", "end_date": "2026-05-31", "query_type": "lots", **change}


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("post", "/api/query-tool/equipment-period", {"json": _period_body(equipment_ids=[])}),
        ("post", "/api/query-tool/equipment-period", {"json": _period_body(equipment_ids=["  "])}),
        ("post", "/api/query-tool/equipment-period", {"json": _period_body(equipment_ids=[f"m{i}" for i in range(51)])}),
        ("post", "/api/query-tool/equipment-period", {"json": _period_body(start_date="2024-01-01", end_date="2025-12-31")}),
        ("post", "/api/query-tool/equipment-period", {"json": _period_body(end_date="2026-04-30")}),
        ("post", "/api/query-tool/equipment-period", {"json": _period_body(query_type="weather")}),
        ("post", "/api/query-tool/lot-equipment", {"json": {"values": [f"L{i}" for i in range(101)]}}),
        ("post", "/api/query-tool/lot-equipment", {"json": {"values": []}}),
        ("post", "/api/query-tool/lot-equipment", {"json": {"input_type": "wafer_lot", "values": ["x"]}}),
        ("get", "/api/query-tool/adjacent-lots", {}),
        ("get", "/api/query-tool/adjacent-lots", {"params": {"container_id": "x", "min_each_side": -1}}),
        ("get", "/api/query-tool/split-merge-history", {"params": {"container_id": "x", "mode": "all"}}),
        ("get", "/api/query-tool/equipment-recent-jobs/x", {"params": {"limit": 0}}),
        ("get", "/api/query-tool/adjacent-lots", {"params": {"container_id": "x", "format": "xml"}}),
    ],
)
def test_bad_input_is_400(client: TestClient, method: str, url: str, kwargs: dict[str, Any]) -> None:
    resp = getattr(client, method)(url, **kwargs)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "VALIDATION_ERROR"


def test_limits_accept_their_maximum(client: TestClient) -> None:
    ok = _period_body(equipment_ids=[f"m{i}" for i in range(50)], start_date="2026-01-01", end_date="2026-01-31")
    assert client.post("/api/query-tool/equipment-period", json=ok).status_code == 200
    body = client.post("/api/query-tool/lot-equipment", json={"values": [f"L{i}" for i in range(100)]}).json()
    assert body["count"] == 0 and len(body["not_found"]) == 100
