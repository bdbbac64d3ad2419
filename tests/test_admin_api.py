"""The admin API through the app: bearer auth, worker status, the restart policy with its
cooldown, churn block and explicit override, the audit log, and the /admin page."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from faults import SignalRecorder, app_client, signal_recorder
from mesdash.admin.auth import hash_token

ADMIN, VIEWER = "admin-token-for-tests", "viewer-token-for-tests"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_VIEWER = {"Authorization": f"Bearer {VIEWER}"}
COOLDOWN = 0.4


@pytest.fixture
def env(tiny_duckdb_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MESDASH_DATABASE_URL": tiny_duckdb_url,
        "MESDASH_API_TOKENS": f"{hash_token(ADMIN)}:admin,{hash_token(VIEWER)}:viewer",
        "MESDASH_RUN_DIR": str(tmp_path / "run"),
        "MESDASH_AUDIT_LOG": str(tmp_path / "log" / "audit.jsonl"),
        "WORKER_RESTART_COOLDOWN": str(COOLDOWN),
    }


@pytest.fixture
def client(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with app_client(monkeypatch, **env) as c:
        yield c


@pytest.fixture
def master(tmp_path: Path) -> Iterator[SignalRecorder]:
    with signal_recorder(tmp_path / "run") as recorder:
        yield recorder


def _audit(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["MESDASH_AUDIT_LOG"])
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _restart(client: Any, **body: Any) -> Any:
    return client.post("/admin/api/worker/restart", json=body, headers=AS_ADMIN)


# ---------------------------------------------------------------------------- auth ----
ADMIN_CALLS = [
    ("GET", "/admin/api/system-status"),
    ("GET", "/admin/api/worker/status"),
    ("GET", "/admin/api/audit"),
    ("GET", "/health/deep"),
    ("POST", "/admin/api/worker/restart"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_admin_endpoints_need_an_admin_token(client: Any, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {"reason": "x"}} if method == "POST" else {}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {ADMIN}"}):
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    response = client.request(method, path, headers=AS_VIEWER, **kwargs)
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    response = client.request(method, path, headers=AS_ADMIN, **kwargs)
    assert response.status_code not in (401, 403)


def test_without_configured_tokens_nobody_is_admin(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in env.items() if k != "MESDASH_API_TOKENS"}
    monkeypatch.delenv("MESDASH_API_TOKENS", raising=False)
    with app_client(monkeypatch, **env) as client:
        for token in (ADMIN, "admin", ""):
            response = client.get("/admin/api/worker/status", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401


def test_public_endpoints_need_no_token(client: Any) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/admin").status_code == 200


# ------------------------------------------------------------------ worker status ----
def test_worker_status_without_gunicorn(client: Any) -> None:
    response = client.get("/admin/api/worker/status", headers=AS_ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["pid"] == os.getpid()
    assert body["gunicorn"] is False and body["master_pid"] is None and body["workers"] == []
    assert body["restart_history"] == [] and body["pending_requests"] == 0
    assert body["policy"] == {
        "state": "allowed",
        "cooldown_remaining_seconds": 0.0,
        "cooldown_seconds": COOLDOWN,
        "churn_count": 0,
        "churn_threshold": 3,
        "churn_window_seconds": 600.0,
        "churn_exceeded": False,
        "last_restart_at": None,
    }
    assert body["recommendation"] == {"action": "observe", "reason": "all checks pass"}
    started = body["started_at"]
    assert started.startswith("20") and started.endswith("+00:00")


def test_worker_status_lists_the_masters_children(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with signal_recorder(tmp_path / "run", children=2) as recorder, app_client(monkeypatch, **env) as client:
        body = client.get("/admin/api/worker/status", headers=AS_ADMIN).json()
        assert body["gunicorn"] is True and body["master_pid"] == recorder.pid
        assert sorted(w["pid"] for w in body["workers"]) == sorted(recorder.children)
        assert all(w["rss_mb"] > 0 and w["heartbeat_age_seconds"] is None for w in body["workers"])


def test_system_status_has_every_section(client: Any) -> None:
    client.post("/api/trace/lineage", json={"container_ids": ["4881038000100000"]})
    body = client.get("/admin/api/system-status", headers=AS_ADMIN).json()
    assert set(body) == {"health", "worker", "queries", "memory", "queues"}
    assert body["health"]["status"] == "healthy"
    assert body["worker"]["policy"]["state"] == "allowed"
    assert body["queries"]["count"] >= 1 and body["queries"]["latency_ms"]["p50"] is not None
    assert 0 < body["memory"]["system_percent"] < 100 and body["memory"]["process_rss_mb"] > 10
    assert body["queues"]["backend"] == "in-process"


# ------------------------------------------------------------------------ restart ----
def test_restart_without_gunicorn_is_unsupported(client: Any, env: dict[str, str]) -> None:
    response = _restart(client, reason="pages are slow")
    assert response.status_code == 409
    assert response.json()["code"] == "RESTART_UNSUPPORTED"
    [entry] = _audit(env)
    assert entry["decision"] == "unsupported" and entry["reason"] == "pages are slow"
    assert entry["actor"] == f"admin:{hash_token(ADMIN)[:8]}"
    assert not (Path(env["MESDASH_RUN_DIR"]) / "restart-requests").exists()


def test_restart_policy_cooldown_churn_and_override(
    client: Any, master: SignalRecorder, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Path(env["MESDASH_RUN_DIR"])
    first = _restart(client, reason="memory creeping up")
    assert first.status_code == 202
    body = first.json()
    assert body["status"] == "accepted" and body["override"] is False
    assert body["policy"]["state"] == "cooldown" and body["policy"]["churn_count"] == 1
    [request_file] = list((run / "restart-requests").glob("*.json"))
    assert orjson.loads(request_file.read_bytes())["request_id"] == body["request_id"]

    cooling = _restart(client, reason="again")
    assert cooling.status_code == 429
    problem = cooling.json()
    assert problem["code"] == "RESTART_COOLDOWN"
    assert cooling.headers["Retry-After"] == "1" and problem["retry_after_seconds"] == 1
    assert problem["policy"]["state"] == "cooldown"

    for reason in ("second", "third"):
        time.sleep(COOLDOWN + 0.05)
        assert _restart(client, reason=reason).status_code == 202
    time.sleep(COOLDOWN + 0.05)
    blocked = _restart(client, reason="fourth")
    assert blocked.status_code == 409
    assert blocked.json()["code"] == "RESTART_POLICY_BLOCKED"
    assert blocked.json()["policy"]["churn_exceeded"] is True

    # an override needs both the acknowledgement and a reason
    for body in (
        {"manual_override": True},
        {"manual_override": True, "override_acknowledged": True, "override_reason": "   "},
        {"manual_override": True, "override_acknowledged": False, "override_reason": "outage"},
    ):
        response = _restart(client, reason="x", **body)
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"
    strict = _restart(client, manual_override="t", override_acknowledged="yes", override_reason="r")
    assert strict.status_code == 400 and strict.json()["code"] == "VALIDATION_ERROR"

    overridden = _restart(
        client,
        reason="fourth",
        manual_override="yes",
        override_acknowledged=True,
        override_reason="night shift stuck",
    )
    assert overridden.status_code == 202 and overridden.json()["override"] is True
    assert len(list((run / "restart-requests").glob("*.json"))) == 4
    assert master.hups() == 0  # the API only files requests; the watchdog signals

    decisions = [(e["decision"], e["reason"]) for e in _audit(env)]
    assert decisions == [
        ("accepted", "memory creeping up"),
        ("restart_cooldown", "again"),
        ("accepted", "second"),
        ("accepted", "third"),
        ("restart_policy_blocked", "fourth"),
        ("invalid", "x"),
        ("invalid", "x"),
        ("invalid", "x"),
        ("override_accepted", "fourth"),
    ]
    last = _audit(env)[-1]
    assert last["manual_override"] is True and last["override_acknowledged"] is True
    assert last["override_reason"] == "night shift stuck" and last["request_id"]
    assert last["actor"] == f"admin:{hash_token(ADMIN)[:8]}" and last["client"] == "testclient"

    # a new process (reload) sees the same history, churn and audit trail
    time.sleep(COOLDOWN + 0.05)
    with app_client(monkeypatch, **env) as reloaded:
        status = reloaded.get("/admin/api/worker/status", headers=AS_ADMIN).json()
        assert status["policy"]["churn_count"] == 4 and status["policy"]["state"] == "blocked"
        assert [h["reason"] for h in status["restart_history"]] == [
            "memory creeping up",
            "second",
            "third",
            "fourth",
        ]
        assert status["restart_history"][-1]["override"] is True
        assert status["restart_history"][-1]["override_reason"] == "night shift stuck"
        assert status["pending_requests"] == 4
        assert status["recommendation"]["action"] == "investigate_churn"
        audit = reloaded.get("/admin/api/audit?limit=3", headers=AS_ADMIN).json()["entries"]
        assert [e["decision"] for e in audit] == ["invalid", "invalid", "override_accepted"]
        health = reloaded.get("/health").json()["resilience"]
        assert health["restart_churn"] == {
            "count": 4,
            "threshold": 3,
            "window_seconds": 600.0,
            "exceeded": True,
        }
        assert health["policy_state"] == "blocked"


def test_restart_body_is_validated(client: Any, master: SignalRecorder) -> None:
    for body in ({"reason": "x" * 501}, {"reason": "x", "unknown": 1}, {"reason": 5}):
        response = _restart(client, **body)
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


# ---------------------------------------------------------------------- the page ----
def test_admin_page_extends_the_shell(client: Any) -> None:
    response = client.get("/admin")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'aria-current="page"' in html and ">Admin</a>" in html
    for element in (
        "st-breaker",
        "st-pool",
        "st-sem",
        "workers-table",
        "history-table",
        "restart-form",
        "override-ack",
        "override-reason",
        "rec-action",
        "degraded-banner",
    ):
        assert f'id="{element}"' in html
    assert "/static/js/admin.js?v=" in html
    script = client.get("/static/js/admin.js")
    assert script.status_code == 200
    assert 'from "./api.js"' in script.text and "/admin/api/worker/restart" in script.text
    assert "override_acknowledged" in script.text and "RESTART_POLICY_BLOCKED" in script.text


def test_openapi_documents_admin_errors(client: Any) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    restart = paths["/admin/api/worker/restart"]["post"]["responses"]
    assert {"202", "400", "401", "403", "409", "429"} <= set(restart)
    assert {"200", "401", "403"} <= set(paths["/admin/api/worker/status"]["get"]["responses"])
    assert {"200", "503"} <= set(paths["/health"]["get"]["responses"])
    assert "/admin" not in paths and "/metrics" not in paths
