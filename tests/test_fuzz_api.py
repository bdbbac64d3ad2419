"""Schemathesis over the OpenAPI schema of every endpoint, against the app on the tiny
DuckDB warehouse: no 500, and every error is problem+json with a stable upper-snake code.

Each operation gets schemathesis' explicit and coverage cases (boundary and negative values
of every parameter: most of the ~4,000 requests) and 15 generated examples, few so the
default suite stays quick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from mesdash.app import create_app
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.ratelimit import reset_rate_limiter

CODE = re.compile(r"^[A-Z][A-Z0-9_]+$")


# The schema is read from an app built at import time (routes and models need no warehouse);
# each test points that app at the tiny warehouse through the dependency override.
APP = create_app()
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@pytest.fixture
def fuzz_client(tiny_duckdb_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    from mesdash.settings import reset_settings

    # every endpoint is fuzzed, streams, exports and the admin restart included: whatever
    # they write (restart requests, audit lines, spool files) stays in this test's folder
    monkeypatch.setenv("MESDASH_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESDASH_DATABASE_URL", tiny_duckdb_url)
    monkeypatch.setenv("MESDASH_ENV", "testing")
    monkeypatch.delenv("MESDASH_REDIS_URL", raising=False)
    reset_settings()
    reset_rate_limiter()
    wh = Warehouse(tiny_duckdb_url)
    APP.dependency_overrides[get_warehouse] = lambda: wh
    # one client (one lifespan) per operation: hypothesis runs every example in this fixture
    with TestClient(APP, raise_server_exceptions=False) as client:
        yield client
    APP.dependency_overrides.clear()
    wh.close()
    reset_rate_limiter()


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_500_and_errors_are_problems(case: Any, fuzz_client: TestClient) -> None:
    reset_rate_limiter()  # the fuzzer's request rate is not what the limiter is tested with
    response = case.call(session=fuzz_client)
    assert response.status_code < 500 or response.status_code in (503, 504), (
        f"{case.operation.method.upper()} {case.operation.path} → {response.status_code}: "
        f"{response.text[:500]}"
    )
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), response.text[:300]
        body = response.json()
        assert CODE.match(str(body.get("code"))), body
        assert body["status"] == response.status_code
        assert "Traceback" not in response.text and "SELECT" not in str(body.get("detail", ""))
