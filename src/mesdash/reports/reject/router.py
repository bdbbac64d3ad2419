"""Reject-history routes: one primary query (``POST …/query``), then views of its cached
dataset (``GET …/{view}?query_id=…``) that never touch the warehouse."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mesdash.core.batch.csv_export import MEDIA_TYPE as CSV_MEDIA_TYPE
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.factory_day import day_of
from mesdash.core.jobs import accepted_response
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.reports.reject import service, views
from mesdash.reports.reject.jobs import submit_query
from mesdash.reports.reject.schemas import RejectQuery
from mesdash.web.pages import render

router = APIRouter(tags=["reject-history"])
API = "/api/reject-history"
DB_ERRORS = ("DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "DB_BUSY", "CIRCUIT_OPEN", "QUERY_TIMEOUT")
VIEW_ERRORS = problem_responses("CACHE_EXPIRED")
QueryId = Annotated[str, Query(pattern=r"^[0-9a-f]{16}$", description="from POST /query")]
Selected = Annotated[list[str], Query()]
Measure = Annotated[Literal["charged_off", "defect", "total"], Query()]


@router.get("/reject-history", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    return render(request, "reject_history.html", title="Reject history", plotly=True)


def _json(payload: object) -> Response:
    return Response(jsonable_bytes(payload), media_type="application/json")


def view_filters(
    reason: Selected = [],  # noqa: B006 — FastAPI copies list defaults
    package: Selected = [],  # noqa: B006
    type: Selected = [],  # noqa: B006 — the dimension's public name
    workcenter_group: Selected = [],  # noqa: B006
    machine: Selected = [],  # noqa: B006
) -> views.ViewFilters:
    """Cross-filter selections, each repeatable (``reason=A&reason=B``)."""
    return views.ViewFilters.of(
        {
            "reason": reason,
            "package": package,
            "type": type,
            "workcenter_group": workcenter_group,
            "machine": machine,
        }
    )


Filters = Annotated[views.ViewFilters, Depends(view_filters)]


@router.post(
    f"{API}/query",
    summary="Run the reject-history primary query (date range ≤ 365 days, or lots) and keep its dataset",
    response_class=Response,
    responses={
        200: {"description": "the dataset is kept: {query_id, quality, as_of, rows, chunks, spilled}"},
        202: {
            "description": "a long query runs as a job: {job_id, kind, status_url, stream_url, result_url}"
        },
        **problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", *DB_ERRORS),
    },
)
def run_query(body: RejectQuery, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    """Date mode above ``BATCH_QUERY_TIME_THRESHOLD_DAYS`` days, or container mode with more
    than one batch of lots, answers 202 with a job whose result is this route's 200 body."""
    today = day_of(datetime.now())
    kept = service.reusable_dataset(body, today)
    if kept is not None:
        return _json(service.dataset_envelope(kept))
    resolution = service.resolve_containers(body, warehouse)
    if service.is_long(body, resolution.container_ids):
        return accepted_response(submit_query(body, today))
    info = service.build_dataset(body, warehouse, resolution=resolution)
    views.prime(info.query_id)
    return _json(service.dataset_envelope(info))


@router.get(
    f"{API}/summary",
    summary="Charged-off vs not-charged-off totals",
    response_class=Response,
    responses=VIEW_ERRORS,
)
def summary(query_id: QueryId, filters: Filters) -> Response:
    return _json(views.summary(query_id, filters))


@router.get(
    f"{API}/trend", summary="Per factory day, week or month", response_class=Response, responses=VIEW_ERRORS
)
def trend(
    query_id: QueryId, filters: Filters, granularity: Literal["day", "week", "month"] = "day"
) -> Response:
    return _json(views.trend(query_id, granularity, filters))


@router.get(
    f"{API}/reason-pareto", summary="Pareto of loss reasons", response_class=Response, responses=VIEW_ERRORS
)
def reason_pareto(
    query_id: QueryId,
    filters: Filters,
    measure: Measure = "charged_off",
    scope: Literal["all", "top80"] = "all",
) -> Response:
    return _json(views.pareto(query_id, "reason", filters, measure, top80_only=scope == "top80"))


@router.get(
    f"{API}/pareto", summary="Pareto of one dimension", response_class=Response, responses=VIEW_ERRORS
)
def dimension_pareto(
    query_id: QueryId,
    filters: Filters,
    dimension: Literal["reason", "package", "type", "workcenter_group", "machine"],
    measure: Measure = "charged_off",
    scope: Literal["all", "top80"] = "all",
) -> Response:
    return _json(views.pareto(query_id, dimension, filters, measure, top80_only=scope == "top80"))


@router.get(f"{API}/list", summary="One sorted page of rows", response_class=Response, responses=VIEW_ERRORS)
def rows_page(
    query_id: QueryId,
    filters: Filters,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE)] = 100,
    sort: Annotated[str, Query(max_length=400, description="columns, '-' for descending")] = "-TXNDATE",
) -> Response:
    return _json(views.rows_page(query_id, page, page_size, sort, filters))


@router.get(
    f"{API}/export",
    summary="Every row, every column, as CSV (UTF-8 with BOM), streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {CSV_MEDIA_TYPE: {}}, "description": "CSV"}, **VIEW_ERRORS},
)
def export(
    query_id: QueryId,
    filters: Filters,
    sort: Annotated[str, Query(max_length=400)] = "TXNDATE",
) -> StreamingResponse:
    body = views.export_csv(query_id, sort, filters)
    headers = {"Content-Disposition": f'attachment; filename="reject-history-{query_id}.csv"'}
    return StreamingResponse(body, media_type=CSV_MEDIA_TYPE, headers=headers)
