"""Hold-history routes: the primary query, views and export from its cached dataset, the
"today" snapshot, and the page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from mesdash.core.batch.csv_export import csv_stream
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.reports.common import QUERY_RESPONSES, VIEW_ERRORS, add_page, query_or_job
from mesdash.reports.hold import service, views
from mesdash.reports.hold.schemas import HoldListView, HoldRequest, HoldView

router = APIRouter(tags=["hold-history"])
API = "/api/hold-history"
add_page(router, "/hold-history", "hold_history.html", "Hold history")


@router.post(
    f"{API}/query",
    summary="Run the primary hold query for a factory-day range; returns query_id and first views",
    response_class=Response,
    responses=QUERY_RESPONSES,
)
def run_query(body: HoldRequest, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    sel = body.selection()

    def first_views(query_id: str) -> dict[str, Any]:
        return {"trend": views.trend(query_id), "summary": views.summary(query_id, sel)}

    return query_or_job("hold-history", body.query(), service, warehouse, first_views)


@router.get(f"{API}/trend", summary="Daily on hand, new, released, future and repeated holds per type",
            response_class=Response, responses=VIEW_ERRORS)
def get_trend(query_id: Annotated[str, Query(max_length=128)]) -> Response:
    return json_response(views.trend(query_id))


@router.get(f"{API}/summary", summary="KPI cards of the selection", response_class=Response,
            responses=VIEW_ERRORS)
def get_summary(params: Annotated[HoldView, Query()]) -> Response:
    return json_response(views.summary(params.query_id, params.selection()))


@router.get(f"{API}/pareto", summary="Hold reasons of the selection, cumulative %",
            response_class=Response, responses=VIEW_ERRORS)
def get_pareto(params: Annotated[HoldView, Query()]) -> Response:
    return json_response(views.pareto(params.query_id, params.selection()))


@router.get(f"{API}/durations", summary="Duration buckets of released and still-held holds",
            response_class=Response, responses=VIEW_ERRORS)
def get_durations(params: Annotated[HoldView, Query()]) -> Response:
    return json_response(views.durations(params.query_id, params.selection()))


@router.get(f"{API}/list", summary="One page of the selected hold records", response_class=Response,
            responses=VIEW_ERRORS)
def get_list(params: Annotated[HoldListView, Query()]) -> Response:
    return json_response(views.rows_page(params.query_id, params.selection(), params.page,
                                         params.page_size, params.sort))


@router.get(f"{API}/export", summary="Every selected hold record as CSV (streamed)",
            response_class=StreamingResponse, responses=VIEW_ERRORS)
def export(params: Annotated[HoldView, Query()]) -> StreamingResponse:
    body = views.export_csv(params.query_id, params.selection())
    return csv_stream(body, f"hold-history-{params.query_id}.csv")


@router.get(f"{API}/today", summary="On hold now, new today, released today (re-read every minute)",
            response_class=Response, responses=problem_responses(*DB_ERRORS))
def get_today(warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    return json_response(views.today(service.today_dataset(warehouse)))
