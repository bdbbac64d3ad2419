"""``POST /api/trace/lineage``: genealogy of container ids, backward or forward."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.errors import TooManyIds, ValidationFailed
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.core.validation import normalize_ids
from mesdash.lineage.schemas import LineageRequest, LineageResult
from mesdash.lineage.service import resolve_cached
from mesdash.settings import get_settings

router = APIRouter(tags=["lineage"])
ERRORS = (
    "TOO_MANY_IDS",
    "PAYLOAD_TOO_LARGE",
    "DB_ERROR",
    "DB_UNAVAILABLE",
    "DB_BUSY",
    "CIRCUIT_OPEN",
    "QUERY_TIMEOUT",
)


def seed_ids(values: list[str]) -> list[str]:
    """Normalized ids; 400 when none is left, 413 over ``LINEAGE_MAX_SEEDS``."""
    ids = normalize_ids(values)
    if not ids:
        raise ValidationFailed("container_ids: give at least one non-empty container id")
    limit = get_settings().lineage_max_seeds
    if len(ids) > limit:
        raise TooManyIds(f"{len(ids)} container ids given; the limit is {limit}")
    return ids


@router.post(
    "/api/trace/lineage",
    summary="Split / merge genealogy of lots",
    response_class=Response,
    responses={200: {"model": LineageResult, "description": "the genealogy"}, **problem_responses(*ERRORS)},
)
def trace_lineage(request: LineageRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    ids = seed_ids(request.container_ids)
    result = resolve_cached(warehouse, ids, request.direction)
    return Response(jsonable_bytes(result), media_type="application/json")
