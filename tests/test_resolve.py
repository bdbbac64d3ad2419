"""Lot resolution on the tiny warehouse (DuckDB and PostgreSQL): each input type equals a
direct query, wildcards, not_found, order and de-duplication, the 2-character rule, the
expansion guards (with the SQL row cap) and injection-looking values."""

from __future__ import annotations

from typing import Any

import pytest

from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import TooManyIds, ValidationFailed
from mesdash.settings import reset_settings
from mesdash.trace import resolve
from mesdash.trace.resolve import like_pattern, resolve_lots

LOTS = "FROM dwh.DW_MES_CONTAINER c WHERE c.OBJECTTYPE = 'LOT'"
GD = " AND c.MFGORDERNAME LIKE 'GD%'"
# input type → (SQL picking sample values, SQL of the lots one value names)
DIRECT: dict[str, tuple[str, str]] = {
    "lot_id": (
        f"SELECT DISTINCT c.CONTAINERNAME AS V {LOTS} ORDER BY 1",
        f"SELECT c.CONTAINERID {LOTS} AND c.CONTAINERNAME = :v",
    ),
    "work_order": (
        f"SELECT DISTINCT c.MFGORDERNAME AS V {LOTS} ORDER BY 1",
        f"SELECT c.CONTAINERID {LOTS} AND c.MFGORDERNAME = :v",
    ),
    "wafer_lot": (
        f"SELECT DISTINCT c.FIRSTNAME AS V {LOTS} AND c.FIRSTNAME IS NOT NULL ORDER BY 1",
        f"SELECT c.CONTAINERID {LOTS} AND c.FIRSTNAME = :v",
    ),
    "serial_number": (
        "SELECT DISTINCT m.FINISHEDNAME AS V FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m ORDER BY 1",
        "SELECT DISTINCT c.CONTAINERID FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS m "
        "JOIN dwh.DW_MES_CONTAINER c ON c.CONTAINERID = m.LOTID "
        "WHERE c.OBJECTTYPE = 'LOT' AND m.FINISHEDNAME = :v",
    ),
    "gd_lot_id": (
        f"SELECT DISTINCT c.CONTAINERNAME AS V {LOTS}{GD} ORDER BY 1",
        f"SELECT c.CONTAINERID {LOTS}{GD} AND c.CONTAINERNAME = :v",
    ),
    "gd_work_order": (
        f"SELECT DISTINCT c.MFGORDERNAME AS V {LOTS}{GD} ORDER BY 1",
        f"SELECT c.CONTAINERID {LOTS}{GD} AND c.MFGORDERNAME = :v",
    ),
}


def column(wh: Warehouse, sql: str, **params: Any) -> list[Any]:
    return [row[0] for row in wh.read_sql_df(sql, params).rows]


def grouped(result: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for lot in result["data"]:
        out.setdefault(lot["input_value"], set()).add(lot["container_id"])
    return out


def set_limits(monkeypatch: pytest.MonkeyPatch, per_token: int, total: int) -> None:
    monkeypatch.setenv("CONTAINER_RESOLVE_MAX_PER_TOKEN", str(per_token))
    monkeypatch.setenv("CONTAINER_RESOLVE_MAX_TOTAL", str(total))
    reset_settings()


@pytest.mark.parametrize("input_type", list(DIRECT))
def test_each_input_type_equals_direct_sql(tiny_warehouse: Warehouse, input_type: str) -> None:
    wh = tiny_warehouse
    pick, lots_of = DIRECT[input_type]
    values = column(wh, pick)
    assert len(values) >= 3, "the tiny data has values of every kind"
    sample = [values[0], values[len(values) // 2], values[-1], "NO-SUCH-VALUE-1"]
    expected = {v: set(column(wh, lots_of, v=v)) for v in sample}
    expected = {v: ids for v, ids in expected.items() if ids}
    before = wh.stats.count

    result = resolve_lots(wh, input_type, sample)

    assert wh.stats.count - before == 1  # exact values: one query
    assert grouped(result) == expected
    assert len(expected) == 3
    assert result["not_found"] == ["NO-SUCH-VALUE-1"]
    assert result["expansion_info"] == {}
    lot = result["data"][0]
    row = wh.read_sql_df(
        "SELECT CONTAINERNAME, MFGORDERNAME, FIRSTNAME, SPECNAME, QTY FROM dwh.DW_MES_CONTAINER "
        "WHERE CONTAINERID = :cid",
        {"cid": lot["container_id"]},
    ).rows[0]
    assert (lot["lot_id"], lot["mfgorder_name"], lot["wafer_lot"], lot["spec_name"], lot["qty"]) == row
    assert lot["input_value"] == sample[0]


def test_material_containers_and_non_gd_lots_are_not_resolved(tiny_warehouse: Warehouse) -> None:
    wh = tiny_warehouse
    material = column(wh, "SELECT CONTAINERNAME FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'MATERIAL'")
    assert material
    assert resolve_lots(wh, "lot_id", material[:1]) == {
        "data": [],
        "not_found": material[:1],
        "expansion_info": {},
    }
    ga_lot = column(wh, f"SELECT c.CONTAINERNAME {LOTS} AND c.MFGORDERNAME LIKE 'GA%' ORDER BY 1")[0]
    ga_order = ga_lot.split("-")[0]
    assert resolve_lots(wh, "gd_lot_id", [ga_lot])["not_found"] == [ga_lot]
    assert resolve_lots(wh, "gd_work_order", [ga_order])["not_found"] == [ga_order]
    assert resolve_lots(wh, "lot_id", [ga_lot])["data"][0]["lot_id"] == ga_lot


def real_prefix(wh: Warehouse, sql: str, length: int) -> str:
    """A prefix of a value present in the data."""
    return str(column(wh, sql)[0])[:length]


@pytest.mark.parametrize(
    ("input_type", "pick", "length"),
    [
        ("lot_id", f"SELECT c.CONTAINERNAME {LOTS} AND c.CONTAINERNAME LIKE 'GA%' ORDER BY 1", 6),
        ("work_order", f"SELECT c.MFGORDERNAME {LOTS} ORDER BY 1", 6),
        ("serial_number", "SELECT FINISHEDNAME FROM dwh.DW_MES_PJ_COMBINEDASSYLOTS ORDER BY 1", 4),
    ],
)
def test_wildcards_equal_direct_like(
    tiny_warehouse: Warehouse, input_type: str, pick: str, length: int
) -> None:
    wh = tiny_warehouse
    prefix = real_prefix(wh, pick, length)
    lots_of = DIRECT[input_type][1].replace("= :v", "LIKE :v")
    expected = set(column(wh, lots_of, v=prefix + "%"))
    assert len(expected) > 1
    before = wh.stats.count

    star = resolve_lots(wh, input_type, [prefix + "*"])
    percent = resolve_lots(wh, input_type, [prefix + "%"])

    assert wh.stats.count - before == 2  # one query per wildcard token
    assert grouped(star) == {prefix + "*": expected}
    assert grouped(percent) == {prefix + "%": expected}
    assert star["expansion_info"] == {prefix + "*": len(expected)}
    assert star["not_found"] == []
    names = [lot["lot_id"] for lot in star["data"]]
    assert names == sorted(names)


def test_wildcard_inner_star_and_literal_underscore(tiny_warehouse: Warehouse) -> None:
    wh = tiny_warehouse
    name = column(wh, f"SELECT c.CONTAINERNAME {LOTS} AND c.CONTAINERNAME LIKE 'GA%-A00-001' ORDER BY 1")[0]
    order, _, rest = name.partition("-")
    token = f"{order}*{rest[-3:]}"  # e.g. GA26040021*001
    expected = {
        n
        for n in column(wh, f"SELECT c.CONTAINERNAME {LOTS}")
        if n.startswith(order) and n.endswith(rest[-3:])
    }
    result = resolve_lots(wh, "lot_id", [token])
    assert {lot["lot_id"] for lot in result["data"]} == expected
    # '_' is literal: 'GA_6…' matches nothing although 'GA26…' exists
    underscore = "GA_" + order[3:] + "*"
    assert resolve_lots(wh, "lot_id", [underscore])["not_found"] == [underscore]
    assert like_pattern("GA_1*x%") == "GA\\_1%x%"
    assert like_pattern("GA26") is None


def test_order_kept_dedupe_and_overlap(tiny_warehouse: Warehouse) -> None:
    wh = tiny_warehouse
    names = column(wh, f"SELECT c.CONTAINERNAME {LOTS} AND c.MFGORDERNAME LIKE 'GA%' ORDER BY 1")
    first, last = names[0], names[-1]
    prefix = first[:10]  # the work order of the first lot
    result = resolve_lots(wh, "lot_id", [f"  {last} ", "", first, last, "  ", f"{prefix}*", "NOPE-1", None])

    inputs = list(dict.fromkeys(lot["input_value"] for lot in result["data"]))
    assert inputs == [last, first, f"{prefix}*"]
    assert result["data"][0]["lot_id"] == last and result["data"][1]["lot_id"] == first
    ids = [lot["container_id"] for lot in result["data"]]
    assert len(ids) == len(set(ids))  # a lot matched by two tokens appears once, under the first
    assert first not in {lot["lot_id"] for lot in result["data"][2:]}
    assert result["not_found"] == ["NOPE-1"]
    same_order = set(column(wh, f"SELECT c.CONTAINERNAME {LOTS} AND c.CONTAINERNAME LIKE :p", p=prefix + "%"))
    assert result["expansion_info"] == {f"{prefix}*": len(same_order)}


def test_exact_values_batched_over_statements(
    tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tiny_warehouse
    names = column(wh, f"SELECT c.CONTAINERNAME {LOTS} ORDER BY 1")[:7]
    whole = resolve_lots(wh, "lot_id", names)
    monkeypatch.setattr(resolve, "VALUES_PER_STATEMENT", 3)
    before = wh.stats.count
    assert resolve_lots(wh, "lot_id", names) == whole
    assert wh.stats.count - before == 3
    assert [lot["lot_id"] for lot in whole["data"]] == names


@pytest.mark.parametrize("token", ["G*", "*", "%", "*GA26", "G%", "A*B"])
def test_wildcard_needs_two_literal_leading_characters(tiny_warehouse: Warehouse, token: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        resolve_lots(tiny_warehouse, "lot_id", ["GA26*", token])
    assert repr(token) in err.value.detail
    assert err.value.status == 400 and err.value.extra["token"] == token


def test_unknown_input_type(tiny_warehouse: Warehouse) -> None:
    with pytest.raises(ValidationFailed, match="input_type"):
        resolve_lots(tiny_warehouse, "container_name", ["x"])


def capped_reads(monkeypatch: pytest.MonkeyPatch, wh: Warehouse) -> list[tuple[int, int]]:
    """Records (cap, rows returned) of every resolution query."""
    seen: list[tuple[int, int]] = []
    original = wh.read_sql_df

    def spy(sql: str, params: Any = None, timeout_seconds: float | None = None) -> Any:
        result = original(sql, params, timeout_seconds)
        seen.append((params["cap"], len(result.rows)))
        return result

    monkeypatch.setattr(wh, "read_sql_df", spy)
    return seen


def test_per_token_guard_wildcard(tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = tiny_warehouse
    set_limits(monkeypatch, per_token=3, total=1000)
    seen = capped_reads(monkeypatch, wh)
    with pytest.raises(TooManyIds) as err:
        resolve_lots(wh, "lot_id", ["GA*"])
    assert err.value.status == 413 and err.value.code == "TOO_MANY_IDS"
    assert "'GA*'" in err.value.detail and "3" in err.value.detail
    assert err.value.extra == {"token": "GA*", "limit": 3}
    assert seen == [(4, 4)]  # the database stopped at limit + 1 rows


def test_per_token_guard_exact_value(tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = tiny_warehouse
    sizes = wh.read_sql_df(
        f"SELECT c.MFGORDERNAME, COUNT(*) {LOTS} GROUP BY c.MFGORDERNAME ORDER BY 2, 1"
    ).rows
    (small, small_n), (big, big_n) = sizes[0], sizes[-1]
    assert int(small_n) <= 3 < int(big_n)
    set_limits(monkeypatch, per_token=3, total=1000)
    assert resolve_lots(wh, "work_order", [small])["data"]
    with pytest.raises(TooManyIds) as err:
        resolve_lots(wh, "work_order", [small, big])
    assert err.value.extra == {"token": big, "limit": 3}


def test_total_guard(tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = tiny_warehouse
    names = column(wh, f"SELECT c.CONTAINERNAME {LOTS} AND c.MFGORDERNAME LIKE 'GA%' ORDER BY 1")
    orders = sorted({n[:10] for n in names})[:3]
    assert sum(n[:10] in orders for n in names) > 6
    set_limits(monkeypatch, per_token=1000, total=5)
    seen = capped_reads(monkeypatch, wh)
    with pytest.raises(TooManyIds) as err:
        resolve_lots(wh, "lot_id", [f"{o}*" for o in orders])
    assert err.value.extra == {"limit": 5}
    assert "CONTAINER_RESOLVE_MAX_TOTAL" in err.value.detail
    assert all(rows <= cap <= 6 for cap, rows in seen)
    assert sum(rows for _, rows in seen) == 6  # never read past the limit + 1
    # exact values count too, and so do more inputs than the limit
    seen.clear()
    with pytest.raises(TooManyIds, match="CONTAINER_RESOLVE_MAX_TOTAL"):
        resolve_lots(wh, "work_order", orders)  # 3 exact values naming more than 5 lots
    assert seen == [(6, 6)]
    with pytest.raises(TooManyIds, match="6 inputs; CONTAINER_RESOLVE_MAX_TOTAL is 5"):
        resolve_lots(wh, "lot_id", [f"NOPE-{i}" for i in range(6)])
    assert len(resolve_lots(wh, "lot_id", names[:5])["data"]) == 5


@pytest.mark.parametrize(
    "value",
    [
        "x' OR '1'='1",
        "'; DROP TABLE dwh.DW_MES_CONTAINER; --",
        "GA26' OR 1=1 --*",
        "GA%' UNION SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER --",
        ":cap",
        "GA\\%",
    ],
)
def test_injection_looking_values_are_harmless(tiny_warehouse: Warehouse, value: str) -> None:
    wh = tiny_warehouse
    count = "SELECT COUNT(*) FROM dwh.DW_MES_CONTAINER"
    before = column(wh, count)[0]
    result = resolve_lots(wh, "lot_id", [value])
    assert result["data"] == [] and result["not_found"] == [value]
    assert column(wh, count)[0] == before
