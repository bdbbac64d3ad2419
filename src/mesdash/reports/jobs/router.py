"""Equipment-jobs routes: machine search, the primary query, views, one job's transactions,
the streamed job × transaction CSV, and the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mesdash.core.batch.csv_export import MEDIA_TYPE
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.reports import background
from mesdash.reports.jobs import service, views
from mesdash.reports.jobs.schemas import BreakdownView, JobListView, JobQuery, JobView
from mesdash.reports.resource import machines
from mesdash.web.pages import render

router = APIRouter(tags=["job-query"])
DB_ERRORS = ("DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "DB_BUSY", "CIRCUIT_OPEN", "QUERY_TIMEOUT")
VIEW_ERRORS = problem_responses("CACHE_EXPIRED")
API = "/api/job-query"


def _json(payload: object) -> Response:
    return Response(jsonable_bytes(payload), media_type="application/json")


@router.get("/job-query", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    return render(request, "job_query.html", title="Equipment jobs", plotly=True)


@router.get(f"{API}/machines", summary="Equipment list, searchable by name, family or group",
            response_class=Response, responses=problem_responses(*DB_ERRORS))
def get_machines(
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    return _json(machines.search(warehouse, q, limit))


@router.post(f"{API}/query", summary="Jobs of 1–50 machines over ≤ 730 days; returns query_id",
             response_class=Response, responses={**problem_responses(*DB_ERRORS), **background.ACCEPTED})
def run_query(body: JobQuery, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    if background.runs_as_job(body):
        query = body
        return background.start("job-query", query, service.PREFIX, service.query_id_for(query))
    info = service.build(body, warehouse)
    first = views.jobs_page(info.query_id, JobView(query_id=info.query_id).selection(), page_size=50)
    return _json({"query_id": info.query_id, "rows": info.rows, "chunks": info.chunks,
                  "spilled": info.spilled, "as_of": info.as_of, "quality": info.quality, "jobs": first})


@router.get(f"{API}/jobs", summary="One page of jobs of the selection", response_class=Response,
            responses=VIEW_ERRORS)
def get_jobs(params: Annotated[JobListView, Query()]) -> Response:
    return _json(views.jobs_page(params.query_id, params.selection(), params.page, params.page_size,
                                 params.sort))


@router.get(f"{API}/breakdown", summary="Jobs per machine, status, model or cause", response_class=Response,
            responses=VIEW_ERRORS)
def get_breakdown(params: Annotated[BreakdownView, Query()]) -> Response:
    return _json(views.breakdown(params.query_id, params.selection(), params.dimension))


@router.get(f"{API}/jobs/{{job_id}}/transactions", summary="The transactions of one job",
            response_class=Response, responses=problem_responses("CACHE_EXPIRED", "NOT_FOUND"))
def get_transactions(
    job_id: Annotated[str, Path(max_length=40)], query_id: Annotated[str, Query(max_length=128)]
) -> Response:
    return _json(views.transactions(query_id, job_id))


@router.get(f"{API}/export", summary="Job × transaction rows of the selection as CSV (streamed)",
            response_class=StreamingResponse, responses=VIEW_ERRORS)
def export(params: Annotated[JobView, Query()]) -> StreamingResponse:
    body = views.export_csv(params.query_id, params.selection())
    name = f"job-query-{params.query_id}.csv"
    return StreamingResponse(body, media_type=MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
