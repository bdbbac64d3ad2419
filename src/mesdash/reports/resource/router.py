"""Equipment-history routes: the primary query, its progress, views and export from the
cached dataset, and the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mesdash.core.batch.csv_export import MEDIA_TYPE
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.reports import background
from mesdash.reports.resource import machines, service, views
from mesdash.reports.resource.schemas import (
    ResourceDetailView,
    ResourceHeatmapView,
    ResourceQuery,
    ResourceRequest,
    ResourceView,
)
from mesdash.web.pages import render

router = APIRouter(tags=["resource-history"])
DB_ERRORS = ("DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "DB_BUSY", "CIRCUIT_OPEN", "QUERY_TIMEOUT")
VIEW_ERRORS = problem_responses("CACHE_EXPIRED")
API = "/api/resource-history"


def _json(payload: object) -> Response:
    return Response(jsonable_bytes(payload), media_type="application/json")


@router.get("/resource-history", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    return render(request, "resource_history.html", title="Equipment history", plotly=True)


@router.post(
    f"{API}/query",
    summary="Run the primary equipment query; returns query_id, summary and trend",
    response_class=Response,
    responses={**problem_responses(*DB_ERRORS), **background.ACCEPTED},
)
def run_query(body: ResourceRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    if background.runs_as_job(body):
        query = body.query()
        return background.start("resource-history", query, service.PREFIX, service.query_id_for(query))
    info = service.build(body.query(), warehouse)
    sel = ResourceView(query_id=info.query_id, granularity=body.granularity).selection()
    return _json({
        "query_id": info.query_id,
        "rows": info.rows,
        "chunks": info.chunks,
        "spilled": info.spilled,
        "as_of": info.as_of,
        "quality": info.quality,
        "summary": views.summary(info.query_id, sel),
        "trend": views.trend(info.query_id, sel),
    })


@router.get(f"{API}/machines", summary="Equipment list (searchable) and filter choices",
            response_class=Response, responses=problem_responses(*DB_ERRORS))
def get_machines(
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    return _json(machines.search(warehouse, q, limit))


@router.get(f"{API}/progress", summary="Progress of the plan of a (running) primary query",
            response_class=Response)
def get_progress(params: Annotated[ResourceQuery, Query()]) -> Response:
    return _json(service.progress(params))


@router.get(f"{API}/summary", summary="E10 hours, OU %, availability, yield and OEE of the selection",
            response_class=Response, responses=VIEW_ERRORS)
def get_summary(params: Annotated[ResourceView, Query()]) -> Response:
    return _json(views.summary(params.query_id, params.selection()))


@router.get(f"{API}/trend", summary="Per period: hours per state and E10 percentages",
            response_class=Response, responses=VIEW_ERRORS)
def get_trend(params: Annotated[ResourceView, Query()]) -> Response:
    return _json(views.trend(params.query_id, params.selection()))


@router.get(f"{API}/heatmap", summary="Machine × period matrix of one E10 percentage",
            response_class=Response, responses=VIEW_ERRORS)
def get_heatmap(params: Annotated[ResourceHeatmapView, Query()]) -> Response:
    return _json(views.heatmap(params.query_id, params.selection(), params.metric))


@router.get(f"{API}/detail", summary="One page of machine × period rows", response_class=Response,
            responses=VIEW_ERRORS)
def get_detail(params: Annotated[ResourceDetailView, Query()]) -> Response:
    return _json(views.detail(params.query_id, params.selection(), params.page, params.page_size))


@router.get(f"{API}/export", summary="Machine × period rows with all hours and percentages, CSV",
            response_class=StreamingResponse, responses=VIEW_ERRORS)
def export(params: Annotated[ResourceView, Query()]) -> StreamingResponse:
    body = views.export_csv(params.query_id, params.selection())
    name = f"resource-history-{params.query_id}.csv"
    return StreamingResponse(body, media_type=MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
