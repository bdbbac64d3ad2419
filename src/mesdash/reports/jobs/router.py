"""Equipment-jobs routes: machine search, the primary query, views, one job's transactions,
the streamed job × transaction CSV, and the page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from mesdash.core.batch.csv_export import csv_stream
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.reports.common import QUERY_RESPONSES, VIEW_ERRORS, add_page, query_or_job
from mesdash.reports.jobs import service, views
from mesdash.reports.jobs.schemas import BreakdownView, JobListView, JobQuery, JobSelection, JobView
from mesdash.reports.resource.router import get_machines

router = APIRouter(tags=["job-query"])
API = "/api/job-query"
add_page(router, "/job-query", "job_query.html", "Equipment jobs")


# the machine picker is equipment history's: the same handler under this page's API
router.get(f"{API}/machines", summary="Equipment list, searchable by name, family or group",
           response_class=Response, responses=problem_responses(*DB_ERRORS))(get_machines)


@router.post(f"{API}/query", summary="Jobs of 1–50 machines over ≤ 730 days; returns query_id",
             response_class=Response, responses=QUERY_RESPONSES)
def run_query(body: JobQuery, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    def first_views(query_id: str) -> dict[str, Any]:
        return {"jobs": views.jobs_page(query_id, JobSelection(), page_size=50)}

    return query_or_job("job-query", body, service, warehouse, first_views)


@router.get(f"{API}/jobs", summary="One page of jobs of the selection", response_class=Response,
            responses=VIEW_ERRORS)
def get_jobs(params: Annotated[JobListView, Query()]) -> Response:
    return json_response(views.jobs_page(params.query_id, params.selection(), params.page, params.page_size,
                                         params.sort))


@router.get(f"{API}/breakdown", summary="Jobs per machine, status, model or cause", response_class=Response,
            responses=VIEW_ERRORS)
def get_breakdown(params: Annotated[BreakdownView, Query()]) -> Response:
    return json_response(views.breakdown(params.query_id, params.selection(), params.dimension))


@router.get(f"{API}/jobs/{{job_id}}/transactions", summary="The transactions of one job",
            response_class=Response, responses=problem_responses("CACHE_EXPIRED", "NOT_FOUND"))
def get_transactions(
    job_id: Annotated[str, Path(max_length=40)], query_id: Annotated[str, Query(max_length=128)]
) -> Response:
    return json_response(views.transactions(query_id, job_id))


@router.get(f"{API}/export", summary="Job × transaction rows of the selection as CSV (streamed)",
            response_class=StreamingResponse, responses=VIEW_ERRORS)
def export(params: Annotated[JobView, Query()]) -> StreamingResponse:
    body = views.export_csv(params.query_id, params.selection())
    return csv_stream(body, f"job-query-{params.query_id}.csv")
