"""Trace routes: resolve what an engineer typed into lots; events inline or as a trace job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.jobs import Submitted, accepted_response, cancel, job_status
from mesdash.core.ratelimit import client_identity, get_rate_limiter
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.lineage.router import seed_ids
from mesdash.trace.genealogy import genealogy_graph
from mesdash.trace.resolve import resolve_lots
from mesdash.trace.schemas import DomainName, EventsRequest, GenealogyRequest, SeedResolveRequest
from mesdash.trace.service import trace_request
from mesdash.trace.stream import result_page, stream_job
from mesdash.web.pages import render

router = APIRouter(tags=["trace"])
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Too large to answer inline: a trace job "
        "{job_id, kind, status_url, stream_url, result_url}",
        "content": {"application/json": {}},
    }
}
NDJSON = "application/x-ndjson"


@router.post(
    "/api/trace/seed-resolve",
    summary="Resolve lot ids, work orders, wafer lots or serials into container ids",
    response_class=Response,
    responses=problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", *DB_ERRORS),
)
def seed_resolve(body: SeedResolveRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    return json_response(resolve_lots(warehouse, body.input_type, body.values))


@router.get("/trace", response_class=HTMLResponse, include_in_schema=False)
def trace_page(request: Request) -> Response:
    return render(request, "trace.html", title="Lot trace", plotly=True)


@router.post(
    "/api/trace/genealogy",
    summary="Backward and forward genealogy of lots as one laid-out graph (≤ 500 nodes shown)",
    response_class=Response,
    responses=problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", *DB_ERRORS),
)
def genealogy(body: GenealogyRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    return json_response(genealogy_graph(warehouse, seed_ids(body.container_ids)))


@router.post(
    "/api/trace/events",
    summary="Events of lots per domain: inline up to TRACE_SYNC_CID_LIMIT ids, else a job (202)",
    response_class=Response,
    responses={
        **ACCEPTED,
        **problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", *DB_ERRORS),
    },
)
def trace_events(
    body: EventsRequest, request: Request, warehouse: Warehouse = Depends(get_warehouse)
) -> Response:
    get_rate_limiter().hit_domains(body.domains, client_identity(request))
    answer = trace_request(warehouse, body.container_ids, body.domains, body.lineage)
    if isinstance(answer, Submitted):
        return accepted_response(answer)
    return json_response(answer)


@router.get(
    "/api/trace/job/{job_id}",
    summary="A trace job's status (alias of /api/jobs/{job_id})",
    response_class=Response,
    responses=problem_responses("NOT_FOUND"),
)
def trace_job_status(job_id: str) -> Response:
    return json_response(job_status(job_id))


@router.delete(
    "/api/trace/job/{job_id}",
    summary="Cancel a trace job (alias of DELETE /api/jobs/{job_id})",
    response_class=Response,
    responses=problem_responses("NOT_FOUND"),
)
def trace_job_cancel(job_id: str) -> Response:
    return json_response(cancel(job_id))


@router.get(
    "/api/trace/job/{job_id}/result",
    summary="One page of one domain of a finished trace job (409 while it runs)",
    response_class=Response,
    responses=problem_responses("NOT_FOUND", "JOB_NOT_FINISHED"),
)
def trace_job_result(
    job_id: str,
    domain: DomainName | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    return json_response(result_page(job_id, domain, offset, limit))


@router.get(
    "/api/trace/job/{job_id}/stream",
    summary="A trace job's rows as NDJSON, following the job while it runs",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}, **problem_responses("NOT_FOUND")},
)
def trace_job_stream(job_id: str, from_batch: Annotated[int, Query(ge=0)] = 0) -> StreamingResponse:
    return StreamingResponse(stream_job(job_id, from_batch), media_type=NDJSON)
