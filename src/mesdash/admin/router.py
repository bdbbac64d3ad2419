"""The admin API (bearer token, role admin) and the ``/admin`` page."""

from __future__ import annotations

import os
from typing import Any

import psutil
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from mesdash.admin.auth import Principal, require_admin
from mesdash.admin.deep import memory_state, query_stats, queue_state
from mesdash.admin.diagnostics import worker_list
from mesdash.admin.health import HEALTH
from mesdash.admin.policy import RestartPolicy, iso
from mesdash.admin.restart import audit_log, request_restart
from mesdash.admin.schemas import RestartAccepted, RestartRequest, WorkerStatus
from mesdash.admin.workers import pending_requests
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.settings import Settings, get_settings
from mesdash.web.pages import render

router = APIRouter(tags=["admin"])
AUTH_ERRORS = ("UNAUTHORIZED", "FORBIDDEN")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(
        jsonable_bytes(payload),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def worker_status(settings: Settings) -> dict[str, Any]:
    master, procs = worker_list(settings)
    policy = RestartPolicy(settings)
    health = HEALTH.get(settings)
    return {
        "pid": os.getpid(),
        "started_at": iso(psutil.Process().create_time()),
        "gunicorn": master is not None,
        "master_pid": master,
        "workers": [w.__dict__ for w in procs],
        "restart_history": policy.recent(),
        "pending_requests": len(pending_requests(settings.run_path)),
        "policy": policy.status().as_dict(),
        "recommendation": health["resilience"]["recovery_recommendation"],
    }


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_page(request: Request) -> Response:
    """The page is a shell; every number on it comes from the token-protected API."""
    return render(request, "admin.html", title="Admin")


@router.get(
    "/admin/api/system-status",
    summary="Health, breaker, pool, semaphore, queries, memory, queues and workers",
    response_class=Response,
    responses={200: {"description": "system status"}, **problem_responses(*AUTH_ERRORS)},
)
def system_status(_: Principal = Depends(require_admin)) -> Response:
    settings = get_settings()
    return _json(
        {
            "health": HEALTH.get(settings),
            "worker": worker_status(settings),
            "queries": query_stats(settings),
            "memory": memory_state(settings),
            "queues": queue_state(),
        }
    )


@router.get(
    "/admin/api/worker/status",
    summary="Worker pids, restart history, churn and policy state",
    response_model=WorkerStatus,
    responses=problem_responses(*AUTH_ERRORS),
)
def get_worker_status(_: Principal = Depends(require_admin)) -> dict[str, Any]:
    return worker_status(get_settings())


@router.post(
    "/admin/api/worker/restart",
    summary="Request a graceful worker reload (executed by `mesdash watchdog`)",
    status_code=202,
    response_model=RestartAccepted,
    responses=problem_responses(
        *AUTH_ERRORS, "RESTART_POLICY_BLOCKED", "RESTART_UNSUPPORTED", "RESTART_COOLDOWN"
    ),
)
def restart_workers(
    body: RestartRequest, request: Request, who: Principal = Depends(require_admin)
) -> dict[str, Any]:
    client = request.client.host if request.client else None
    return request_restart(get_settings(), who, body, client)


@router.get(
    "/admin/api/audit",
    summary="The latest audit log entries, oldest first",
    response_class=Response,
    responses={200: {"description": "audit entries"}, **problem_responses(*AUTH_ERRORS)},
)
def audit_entries(limit: int = Query(50, ge=1, le=1000), _: Principal = Depends(require_admin)) -> Response:
    return _json({"entries": audit_log(get_settings()).tail(limit)})
