"""Hold-history routes: the primary query, views and export from its cached dataset, the
"today" snapshot, and the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mesdash.core.batch.csv_export import MEDIA_TYPE
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.reports import background
from mesdash.reports.hold import service, views
from mesdash.reports.hold.schemas import HoldListView, HoldRequest, HoldView
from mesdash.web.pages import render

router = APIRouter(tags=["hold-history"])
DB_ERRORS = ("DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "DB_BUSY", "CIRCUIT_OPEN", "QUERY_TIMEOUT")
VIEW_ERRORS = problem_responses("CACHE_EXPIRED")
API = "/api/hold-history"


def _json(payload: object) -> Response:
    return Response(jsonable_bytes(payload), media_type="application/json")


@router.get("/hold-history", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    return render(request, "hold_history.html", title="Hold history", plotly=True)


@router.post(
    f"{API}/query",
    summary="Run the primary hold query for a factory-day range; returns query_id and first views",
    response_class=Response,
    responses={**problem_responses(*DB_ERRORS), **background.ACCEPTED},
)
def run_query(body: HoldRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    if background.runs_as_job(body):
        query = body.query()
        return background.start("hold-history", query, service.PREFIX, service.query_id_for(query))
    info = service.build(body.query(), warehouse)
    sel = body.selection()
    return _json({
        "query_id": info.query_id,
        "rows": info.rows,
        "chunks": info.chunks,
        "spilled": info.spilled,
        "as_of": info.as_of,
        "quality": info.quality,
        "trend": views.trend(info.query_id),
        "summary": views.summary(info.query_id, sel),
    })


@router.get(f"{API}/trend", summary="Daily on hand, new, released, future and repeated holds per type",
            response_class=Response, responses=VIEW_ERRORS)
def get_trend(query_id: Annotated[str, Query(max_length=128)]) -> Response:
    return _json(views.trend(query_id))


@router.get(f"{API}/summary", summary="KPI cards of the selection", response_class=Response,
            responses=VIEW_ERRORS)
def get_summary(params: Annotated[HoldView, Query()]) -> Response:
    return _json(views.summary(params.query_id, params.selection()))


@router.get(f"{API}/pareto", summary="Hold reasons of the selection, cumulative %",
            response_class=Response, responses=VIEW_ERRORS)
def get_pareto(params: Annotated[HoldView, Query()]) -> Response:
    return _json(views.pareto(params.query_id, params.selection()))


@router.get(f"{API}/durations", summary="Duration buckets of released and still-held holds",
            response_class=Response, responses=VIEW_ERRORS)
def get_durations(params: Annotated[HoldView, Query()]) -> Response:
    return _json(views.durations(params.query_id, params.selection()))


@router.get(f"{API}/list", summary="One page of the selected hold records", response_class=Response,
            responses=VIEW_ERRORS)
def get_list(params: Annotated[HoldListView, Query()]) -> Response:
    return _json(views.rows_page(params.query_id, params.selection(), params.page,
                                 params.page_size, params.sort))


@router.get(f"{API}/export", summary="Every selected hold record as CSV (streamed)",
            response_class=StreamingResponse, responses=VIEW_ERRORS)
def export(params: Annotated[HoldView, Query()]) -> StreamingResponse:
    body = views.export_csv(params.query_id, params.selection())
    name = f"hold-history-{params.query_id}.csv"
    return StreamingResponse(body, media_type=MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get(f"{API}/today", summary="On hold now, new today, released today (re-read every minute)",
            response_class=Response, responses=problem_responses(*DB_ERRORS))
def get_today(warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    return _json(views.today(service.today_dataset(warehouse)))
