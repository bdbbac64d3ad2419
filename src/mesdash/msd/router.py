"""``/api/mid-section-defect/*``: stations, loss reasons, the analysis (GET date mode, POST
container mode), its paged detail and CSV export. Handlers parse, call the service, shape."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from mesdash.core.batch.csv_export import csv_stream
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.jobs import accepted_response
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.msd import detail, jobs, service
from mesdash.msd.detection import check_station, station_orders
from mesdash.msd.schemas import (
    DEFAULT_STATION,
    AnalysisParams,
    ContainerAnalysisRequest,
    Direction,
    split_csv,
)
from mesdash.trace.resolve import resolve_lots
from mesdash.web.pages import render

router = APIRouter(tags=["mid-section-defect"])
QueryId = Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
API = "/api/mid-section-defect"


@router.get("/mid-section-defect", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    return render(request, "mid_section_defect.html", title="Mid-section defect", plotly=True)


def _answer(warehouse: Warehouse, params: AnalysisParams, **extra: object) -> Response:
    """200 with the analysis (cached, or computed now), or 202 while a big one runs as a job."""
    found = service.peek(params)
    if found is None and jobs.is_big(params):
        return accepted_response(jobs.start(params))
    summary = (found or service.analyze(warehouse, params))["summary"]
    return json_response({**summary, **extra})


def _params(**values: object) -> AnalysisParams:
    try:
        return AnalysisParams.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        raise ValidationFailed(f"{where}: {first.get('msg', 'invalid')}") from None


@router.get(
    API + "/stations",
    summary="Station groups in route order",
    response_class=Response,
    responses=problem_responses(*DB_ERRORS),
)
def stations(warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    orders = station_orders(warehouse)
    data = [
        {"workcenter_group": g, "order": o} for g, o in sorted(orders.items(), key=lambda kv: (kv[1], kv[0]))
    ]
    return json_response({"data": data, "default": DEFAULT_STATION})


@router.get(
    API + "/loss-reasons",
    summary="Loss reasons recorded at a station group",
    response_class=Response,
    responses=problem_responses("VALIDATION_ERROR", *DB_ERRORS),
)
def loss_reasons(station: str = DEFAULT_STATION, warehouse: Warehouse = Depends(get_warehouse)) -> Response:
    check_station(warehouse, station)
    rows = warehouse.read_sql_df(warehouse.sql("msd/loss_reasons"), {"station": station}).to_dicts()
    return json_response(
        {"station": station, "data": [{"name": r["LOSSREASONNAME"], "rows": r["ROW_COUNT"]} for r in rows]}
    )


@router.get(
    API + "/analysis",
    summary="Defect analysis over a date range (backward or forward)",
    response_class=Response,
    responses={202: {"description": "running as a job"}, **problem_responses("VALIDATION_ERROR", *DB_ERRORS)},
)
def analysis(
    start_date: date,
    end_date: date,
    station: str = DEFAULT_STATION,
    direction: Direction = "backward",
    loss_reasons: str | None = None,
    include_excluded_scrap: str = "false",
    min_lots: int = Query(5, ge=1, le=10_000),
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    params = _params(
        start_date=start_date,
        end_date=end_date,
        station=station,
        direction=direction,
        loss_reasons=split_csv(loss_reasons),
        include_excluded_scrap=include_excluded_scrap,
        min_lots=min_lots,
    )
    return _answer(warehouse, params)


@router.post(
    API + "/analysis",
    summary="Defect analysis of given lots, work orders, wafer lots or serials",
    response_class=Response,
    responses={
        202: {"description": "running as a job"},
        **problem_responses("VALIDATION_ERROR", "TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", *DB_ERRORS),
    },
)
def analysis_of_lots(
    body: ContainerAnalysisRequest, warehouse: Warehouse = Depends(get_warehouse)
) -> Response:
    resolved = resolve_lots(warehouse, body.input_type, body.values)
    ids = [lot["container_id"] for lot in resolved["data"] if lot["container_id"]]
    if not ids:
        raise ValidationFailed(
            "values: none of the inputs matched a lot", extra={"not_found": resolved["not_found"]}
        )
    params = _params(**body.model_dump(exclude={"input_type", "values"}), container_ids=ids)
    return _answer(warehouse, params, not_found=resolved["not_found"])


@router.get(
    API + "/analysis/detail",
    summary="Paged detail (lot × reason) of a finished analysis",
    response_class=Response,
    responses=problem_responses("VALIDATION_ERROR", "CACHE_EXPIRED"),
)
def analysis_detail(
    query_id: QueryId,
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=1000),
    sort: str = "defect_qty",
    order: str = "desc",
) -> Response:
    if sort not in detail.COLUMNS:
        raise ValidationFailed(f"sort: one of {', '.join(detail.COLUMNS)}")
    if order not in ("asc", "desc"):
        raise ValidationFailed("order: asc or desc")
    return json_response(detail.page(query_id, page, page_size, sort, order == "desc"))


@router.get(
    API + "/analysis/suspect",
    summary="One suspect of a finished analysis: its lots' defect rate over time",
    response_class=Response,
    responses=problem_responses("VALIDATION_ERROR", "CACHE_EXPIRED"),
)
def analysis_suspect(query_id: QueryId, rank: int = Query(ge=1)) -> Response:
    return json_response(service.suspect_drill_down(query_id, rank))


@router.get(
    API + "/export",
    summary="CSV of a finished analysis's detail",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses("CACHE_EXPIRED")},
)
def export(query_id: QueryId) -> Response:
    return csv_stream(detail.csv(query_id), f"msd-{query_id}.csv")
