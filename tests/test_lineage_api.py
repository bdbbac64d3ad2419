"""``POST /api/trace/lineage`` through the app: validation (400), the seed limit (413) and
the shape of a result, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mesdash.app import create_app
from mesdash.core.db import get_warehouse
from mesdash.core.db.warehouse import Warehouse
from mesdash.settings import reset_settings
from test_lineage_graph import Genealogy, load_graph

URL = "/api/trace/lineage"
GRAPH = (
    Genealogy()
    .add("root", name="GA0001-A00-001", mfgorder="GA0001", firstname="WF-1")
    .add("kid", "root", name="GA0001-A00-001-01", mfgorder="GA0001", firstname="WF-1")
    .add("fin", name="GA0001-F01", mfgorder="GA0001")
    .merge("kid", "fin", "SN-1")
)


@pytest.fixture
def client(empty_warehouse: Warehouse) -> Iterator[TestClient]:
    load_graph(empty_warehouse, GRAPH)
    app = create_app()
    app.dependency_overrides[get_warehouse] = lambda: empty_warehouse
    with TestClient(app) as test_client:
        yield test_client


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def test_backward_result_shape(client: TestClient) -> None:
    response = client.post(URL, json={"container_ids": [" fin ", "fin", "", "nope"]})
    assert response.status_code == 200
    body = response.json()
    assert body["direction"] == "backward"
    assert body["ancestors"] == {"fin": ["kid", "root"], "nope": []}
    assert body["seed_roots"] == {"fin": ["GA0001-A00-001"], "nope": []}
    assert list(body["nodes"]) == ["fin", "kid", "root", "wafer:WF-1"]
    assert body["edges"] == [
        {"from_cid": "kid", "to_cid": "fin", "edge_type": "merge_source"},
        {"from_cid": "root", "to_cid": "kid", "edge_type": "split_from"},
        {"from_cid": "wafer:WF-1", "to_cid": "root", "edge_type": "wafer_origin"},
    ]
    assert body["diagnostics"]["missing_seeds"] == ["nope"]
    assert body["diagnostics"]["missing_parents"] == []


def test_forward_result_shape(client: TestClient) -> None:
    response = client.post(URL, json={"container_ids": ["root"], "direction": "forward"})
    assert response.status_code == 200
    body = response.json()
    assert body["descendants"] == {"root": ["fin", "kid"]}
    assert body["leaf_serials"] == {"fin": ["SN-1"]}
    assert "ancestors" not in body and body["diagnostics"]["missing_children"] == []


@pytest.mark.parametrize(
    "payload",
    [
        {"container_ids": []},
        {"container_ids": ["", "   "]},
        {"container_ids": "fin"},
        {"container_ids": [1, 2]},
        {"container_ids": ["fin"], "direction": "sideways"},
        {"container_ids": ["fin"], "extra": 1},
        {},
    ],
)
def test_bad_input_is_400(client: TestClient, payload: dict[str, Any]) -> None:
    problem(client.post(URL, json=payload), 400, "VALIDATION_ERROR")


def test_not_json_is_400(client: TestClient) -> None:
    response = client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
    problem(response, 400, "VALIDATION_ERROR")


def test_too_many_ids_is_413_with_the_limit(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_MAX_SEEDS", "3")
    reset_settings()
    body = problem(client.post(URL, json={"container_ids": ["a", "b", "c", "d"]}), 413, "TOO_MANY_IDS")
    assert "3" in body["detail"] and "4" in body["detail"]
    duplicates = {"container_ids": ["fin", "fin", " fin", "kid", "root"]}  # 3 after cleaning
    assert client.post(URL, json=duplicates).status_code == 200


def test_openapi_documents_the_errors(client: TestClient) -> None:
    operation = client.get("/api/openapi.json").json()["paths"][URL]["post"]
    assert {"200", "400", "413", "503", "504"} <= set(operation["responses"])
    assert "422" not in operation["responses"]


def test_repeat_request_is_served_from_cache(
    redis_namespace: str, client: TestClient, empty_warehouse: Warehouse
) -> None:
    import redis

    first = client.post(URL, json={"container_ids": ["fin", "nope"]})
    before = empty_warehouse.stats.count
    again = client.post(URL, json={"container_ids": ["nope", "fin"]})  # same set, other order
    assert empty_warehouse.stats.count == before
    assert again.json() == first.json()
    keys = list(redis.Redis.from_url("redis://127.0.0.1:6379/0").scan_iter(match=f"{redis_namespace}:lineage:backward:*"))
    assert len(keys) == 1
    forward = client.post(URL, json={"container_ids": ["fin"], "direction": "forward"})
    assert forward.status_code == 200 and empty_warehouse.stats.count > before
