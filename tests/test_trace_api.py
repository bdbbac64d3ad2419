"""Trace routes over the real app: seed resolution, inline events, limits, rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mesdash.app import create_app
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.ratelimit import reset_rate_limiter


@pytest.fixture
def client(tiny_warehouse: Warehouse) -> Iterator[TestClient]:
    reset_rate_limiter()
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: tiny_warehouse
    with TestClient(app) as test_client:
        yield test_client
    reset_rate_limiter()


def _lots(wh: Warehouse, n: int) -> list[dict[str, Any]]:
    return wh.read_sql_df(
        "SELECT CONTAINERID, CONTAINERNAME FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' "
        "AND SPLITFROMID IS NOT NULL ORDER BY CONTAINERNAME FETCH FIRST :n ROWS ONLY",
        {"n": n},
    ).to_dicts()


def test_seed_resolve_by_lot_name(client: TestClient, tiny_warehouse: Warehouse) -> None:
    lots = _lots(tiny_warehouse, 3)
    names = [f"  {lots[0]['CONTAINERNAME']} ", lots[1]["CONTAINERNAME"], lots[0]["CONTAINERNAME"], "NO-SUCH-LOT"]
    body = client.post("/api/trace/seed-resolve", json={"input_type": "lot_id", "values": names}).json()
    assert [d["container_id"] for d in body["data"]] == [lots[0]["CONTAINERID"], lots[1]["CONTAINERID"]]
    assert body["not_found"] == ["NO-SUCH-LOT"]


def test_events_inline_equal_the_fetcher(client: TestClient, tiny_warehouse: Warehouse) -> None:
    ids = [lot["CONTAINERID"] for lot in _lots(tiny_warehouse, 20)]
    resp = client.post("/api/trace/events", json={"container_ids": ids, "domains": ["history", "rejects"]})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    direct = tiny_warehouse.read_sql_df(
        "SELECT COUNT(*) FROM dwh.DW_MES_LOTWIPHISTORY WHERE CONTAINERID IN ("
        + ", ".join(f":c{i}" for i in range(len(ids))) + ")",
        {f"c{i}": cid for i, cid in enumerate(ids)},
    ).rows[0][0]
    assert results["history"]["count"] == direct > 0
    assert results["history"]["quality"]["status"] == "complete"
    assert set(results["history"]["data"]) <= set(ids)


def test_lineage_backward_adds_ancestors(client: TestClient, tiny_warehouse: Warehouse) -> None:
    lot = _lots(tiny_warehouse, 1)[0]
    plain = client.post("/api/trace/events", json={"container_ids": [lot["CONTAINERID"]], "domains": ["history"]}).json()
    expanded = client.post(
        "/api/trace/events",
        json={"container_ids": [lot["CONTAINERID"]], "domains": ["history"], "lineage": "backward"},
    ).json()
    assert plain["container_ids"] == [lot["CONTAINERID"]]
    assert len(expanded["container_ids"]) > 1 and expanded["container_ids"][0] == lot["CONTAINERID"]


@pytest.mark.parametrize(
    "payload",
    [
        {"container_ids": ["a"], "domains": ["weather"]},
        {"container_ids": [], "domains": ["history"]},
        {"container_ids": ["a"], "domains": []},
        {"container_ids": ["  "], "domains": ["history"]},
        {"container_ids": ["a"], "domains": ["history"], "lineage": "sideways"},
    ],
)
def test_bad_input_is_400(client: TestClient, payload: dict[str, Any]) -> None:
    resp = client.post("/api/trace/events", json=payload)
    assert resp.status_code == 400 and resp.json()["code"] == "VALIDATION_ERROR"


def test_over_the_trace_limit_is_413(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above TRACE_EVENTS_CID_LIMIT (above the sync limit a job answers: tests/test_trace_jobs.py)."""
    from mesdash.settings import reset_settings

    monkeypatch.setenv("TRACE_EVENTS_CID_LIMIT", "3")
    reset_settings()
    resp = client.post("/api/trace/events", json={"container_ids": list("abcd"), "domains": ["history"]})
    assert resp.status_code == 413 and resp.json()["code"] == "TOO_MANY_IDS" and "3" in resp.json()["detail"]


def test_rate_limit_per_domain_bucket(client: TestClient, tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesdash.settings import reset_settings

    monkeypatch.setenv("EVT_HOLDS_RATE_MAX_REQUESTS", "2")
    reset_settings()
    ids = [lot["CONTAINERID"] for lot in _lots(tiny_warehouse, 2)]
    ask = {"container_ids": ids, "domains": ["holds"]}
    assert [client.post("/api/trace/events", json=ask).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/api/trace/events", json=ask)
    assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    other = client.post("/api/trace/events", json={"container_ids": ids, "domains": ["history"]})
    assert other.status_code == 200  # another domain's bucket is untouched
