"""Trace routes: resolve what an engineer typed into lots, fetch their events inline."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.ratelimit import client_identity, get_rate_limiter
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.trace.resolve import resolve_lots
from mesdash.trace.schemas import EventsRequest, SeedResolveRequest
from mesdash.trace.service import trace_inline

router = APIRouter(tags=["trace"])
DB_ERRORS = ("DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "DB_BUSY", "CIRCUIT_OPEN", "QUERY_TIMEOUT")


def _json(payload: object) -> Response:
    return Response(jsonable_bytes(payload), media_type="application/json")


@router.post(
    "/api/trace/seed-resolve",
    summary="Resolve lot ids, work orders, wafer lots or serials into container ids",
    response_class=Response,
    responses=problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", *DB_ERRORS),
)
def seed_resolve(body: SeedResolveRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    return _json(resolve_lots(warehouse, body.input_type, body.values))


@router.post(
    "/api/trace/events",
    summary="Events of up to TRACE_SYNC_CID_LIMIT lots per domain, inline",
    response_class=Response,
    responses=problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", *DB_ERRORS),
)
def trace_events(
    body: EventsRequest, request: Request, warehouse: Warehouse = Depends(get_warehouse)
) -> Response:
    get_rate_limiter().hit_domains(body.domains, client_identity(request))
    return _json(trace_inline(warehouse, body.container_ids, body.domains, body.lineage))
