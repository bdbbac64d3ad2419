"""Reject-history routes: one primary query (``POST …/query``), then views of its cached
dataset (``GET …/{view}?query_id=…``) that never touch the warehouse."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from mesdash.core.batch.csv_export import MEDIA_TYPE as CSV_MEDIA_TYPE
from mesdash.core.batch.csv_export import csv_stream
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.factory_day import day_of
from mesdash.core.jobs import accepted_response
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.reports.common import VIEW_ERRORS, add_page
from mesdash.reports.reject import service, views
from mesdash.reports.reject.jobs import submit_query
from mesdash.reports.reject.schemas import RejectQuery

router = APIRouter(tags=["reject-history"])
API = "/api/reject-history"
QueryId = Annotated[str, Query(pattern=r"^[0-9a-f]{16}$", description="from POST /query")]
Selected = Annotated[list[str], Query()]
Measure = Annotated[Literal["charged_off", "defect", "total"], Query()]


add_page(router, "/reject-history", "reject_history.html", "Reject history")


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
        return json_response(service.dataset_envelope(kept))
    resolution = service.resolve_containers(body, warehouse)
    if service.is_long(body, resolution.container_ids):
        return accepted_response(submit_query(body, today))
    info = service.build_dataset(body, warehouse, resolution=resolution)
    views.prime(info.query_id)
    return json_response(service.dataset_envelope(info))


@router.get(
    f"{API}/summary",
    summary="Charged-off vs not-charged-off totals",
    response_class=Response,
    responses=VIEW_ERRORS,
)
def summary(query_id: QueryId, filters: Filters) -> Response:
    return json_response(views.summary(query_id, filters))


@router.get(
    f"{API}/trend", summary="Per factory day, week or month", response_class=Response, responses=VIEW_ERRORS
)
def trend(
    query_id: QueryId, filters: Filters, granularity: Literal["day", "week", "month"] = "day"
) -> Response:
    return json_response(views.trend(query_id, granularity, filters))


@router.get(
    f"{API}/reason-pareto", summary="Pareto of loss reasons", response_class=Response, responses=VIEW_ERRORS
)
def reason_pareto(
    query_id: QueryId,
    filters: Filters,
    measure: Measure = "charged_off",
    scope: Literal["all", "top80"] = "all",
) -> Response:
    return json_response(views.pareto(query_id, "reason", filters, measure, top80_only=scope == "top80"))


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
    return json_response(views.pareto(query_id, dimension, filters, measure, top80_only=scope == "top80"))


@router.get(f"{API}/list", summary="One sorted page of rows", response_class=Response, responses=VIEW_ERRORS)
def rows_page(
    query_id: QueryId,
    filters: Filters,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE)] = 100,
    sort: Annotated[str, Query(max_length=400, description="columns, '-' for descending")] = "-TXNDATE",
) -> Response:
    return json_response(views.rows_page(query_id, page, page_size, sort, filters))


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
    return csv_stream(views.export_csv(query_id, sort, filters), f"reject-history-{query_id}.csv")
