"""Equipment-history routes: the primary query, its progress, views and export from the
cached dataset, and the page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from mesdash.core.batch.csv_export import csv_stream
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.reports.common import QUERY_RESPONSES, VIEW_ERRORS, add_page, query_or_job
from mesdash.reports.resource import machines, service, views
from mesdash.reports.resource.schemas import (
    ResourceDetailView,
    ResourceHeatmapView,
    ResourceQuery,
    ResourceRequest,
    ResourceSelection,
    ResourceView,
)

router = APIRouter(tags=["resource-history"])
API = "/api/resource-history"
add_page(router, "/resource-history", "resource_history.html", "Equipment history")


@router.post(
    f"{API}/query",
    summary="Run the primary equipment query; returns query_id, summary and trend",
    response_class=Response,
    responses=QUERY_RESPONSES,
)
def run_query(body: ResourceRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    sel = ResourceSelection(granularity=body.granularity)

    def first_views(query_id: str) -> dict[str, Any]:
        return {"summary": views.summary(query_id, sel), "trend": views.trend(query_id, sel)}

    return query_or_job("resource-history", body.query(), service, warehouse, first_views)


@router.get(f"{API}/machines", summary="Equipment list (searchable) and filter choices",
            response_class=Response, responses=problem_responses(*DB_ERRORS))
def get_machines(
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    return json_response(machines.search(warehouse, q, limit))


@router.get(f"{API}/progress", summary="Progress of the plan of a (running) primary query",
            response_class=Response)
def get_progress(params: Annotated[ResourceQuery, Query()]) -> Response:
    return json_response(service.progress(params))


@router.get(f"{API}/summary", summary="E10 hours, OU %, availability, yield and OEE of the selection",
            response_class=Response, responses=VIEW_ERRORS)
def get_summary(params: Annotated[ResourceView, Query()]) -> Response:
    return json_response(views.summary(params.query_id, params.selection()))


@router.get(f"{API}/trend", summary="Per period: hours per state and E10 percentages",
            response_class=Response, responses=VIEW_ERRORS)
def get_trend(params: Annotated[ResourceView, Query()]) -> Response:
    return json_response(views.trend(params.query_id, params.selection()))


@router.get(f"{API}/heatmap", summary="Machine × period matrix of one E10 percentage",
            response_class=Response, responses=VIEW_ERRORS)
def get_heatmap(params: Annotated[ResourceHeatmapView, Query()]) -> Response:
    return json_response(views.heatmap(params.query_id, params.selection(), params.metric))


@router.get(f"{API}/detail", summary="One page of machine × period rows", response_class=Response,
            responses=VIEW_ERRORS)
def get_detail(params: Annotated[ResourceDetailView, Query()]) -> Response:
    return json_response(views.detail(params.query_id, params.selection(), params.page, params.page_size))


@router.get(f"{API}/export", summary="Machine × period rows with all hours and percentages, CSV",
            response_class=StreamingResponse, responses=VIEW_ERRORS)
def export(params: Annotated[ResourceView, Query()]) -> StreamingResponse:
    body = views.export_csv(params.query_id, params.selection())
    return csv_stream(body, f"resource-history-{params.query_id}.csv")
