"""Query-tool routes (``/api/query-tool/…``) and the ``/query-tool`` page: thin handlers —
parse, call the service, shape JSON or CSV (``?format=csv``, UTF-8 with BOM)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from mesdash.core.batch.csv_export import csv_stream
from mesdash.core.db import Warehouse, get_warehouse
from mesdash.core.jobs import accepted_response
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.querytool import period, service, split_merge
from mesdash.querytool.export import csv_response
from mesdash.querytool.jobs import submit_keeping_result
from mesdash.querytool.lot_equipment import lot_equipment
from mesdash.querytool.schemas import (
    FIRST_DAY,
    LAST_DAY,
    EquipmentPeriodRequest,
    LotEquipmentRequest,
    OutputFormat,
)
from mesdash.web.pages import render

router = APIRouter(tags=["query-tool"])
Format = Annotated[OutputFormat, Query(description="json, or csv (UTF-8 with BOM)")]
ContainerId = Annotated[str, Query(min_length=1, max_length=64, description="CONTAINERID of the lot")]
JOB_202: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted: {job_id, kind, status_url, stream_url, result_url}"}
}


def _answer(
    result: dict[str, Any], format: OutputFormat, filename: str, rows: list[Any] | None = None
) -> Response:
    """``result`` as JSON, or its ``data`` rows (or ``rows``) as the CSV ``filename``."""
    if format == "csv":
        return csv_response(result["data"] if rows is None else rows, filename)
    return json_response(result)


@router.get("/query-tool", response_class=HTMLResponse, include_in_schema=False)
def query_tool_page(request: Request) -> Response:
    return render(request, "query_tool.html", title="Query tool", plotly=True)


@router.get(
    "/api/query-tool/equipment",
    summary="Machines for the picker (equipment only), optionally filtered by name or work center",
    response_class=Response,
    responses=problem_responses(*DB_ERRORS),
)
def equipment(
    q: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = service.PICKER_MAX_ROWS,
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    return json_response(service.equipment_list(warehouse, q, limit))


@router.post(
    "/api/query-tool/equipment-period",
    summary="E10 hours, lots, materials, rejects or jobs of 1–50 machines over ≤ 730 days",
    response_class=Response,
    responses={**JOB_202, **problem_responses("PAYLOAD_TOO_LARGE", "CACHE_EXPIRED", *DB_ERRORS)},
)
def equipment_period(
    body: EquipmentPeriodRequest, format: Format = "json", warehouse: Warehouse = Depends(get_warehouse)
) -> Response:
    if period.needs_job(body):
        params = body.model_dump(mode="json")
        query_id = period.query_id_for(body)
        return accepted_response(submit_keeping_result(period.PERIOD_JOB, params, period.PREFIX, query_id))
    info = period.build(warehouse, body)
    if format == "csv":
        return csv_stream(period.csv_bytes(info.query_id), f"equipment-{body.query_type}.csv")
    return json_response(period.view(info.query_id))


@router.get(
    "/api/query-tool/equipment-period/{query_id}",
    summary="A page of a kept equipment-period result (e.g. after its job finished), or its CSV",
    response_class=Response,
    responses=problem_responses("CACHE_EXPIRED"),
)
def equipment_period_view(
    query_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=period.MAX_PAGE)] = period.DEFAULT_PAGE,
    format: Format = "json",
) -> Response:
    if format == "csv":
        return csv_stream(period.csv_bytes(query_id), f"equipment-period-{query_id}.csv")
    return json_response(period.view(query_id, offset, limit))


@router.get(
    "/api/query-tool/adjacent-lots",
    summary="Lots that ran on the same machine just before and after a lot's track-in",
    response_class=Response,
    responses=problem_responses(*DB_ERRORS),
)
def adjacent_lots(
    container_id: ContainerId,
    equipment_id: Annotated[str | None, Query(max_length=64)] = None,
    spec_name: Annotated[str | None, Query(max_length=64)] = None,
    min_each_side: Annotated[int, Query(ge=0, le=50)] = service.MIN_EACH_SIDE,
    max_each_side: Annotated[int, Query(ge=1, le=200)] = service.MAX_EACH_SIDE,
    window_days: Annotated[int, Query(ge=1, le=90)] = service.WINDOW_DAYS,
    format: Format = "json",
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    result = service.adjacent_lots(
        warehouse,
        container_id,
        equipment_id=equipment_id,
        spec_name=spec_name,
        min_each_side=min_each_side,
        max_each_side=max_each_side,
        window_days=window_days,
    )
    rows = [lot for anchor in result["anchors"] for lot in anchor["lots"]]
    return _answer(result, format, "adjacent-lots.csv", rows)


@router.post(
    "/api/query-tool/lot-equipment",
    summary="Every machine the lots ran on (split-parent fallback up to 10 levels)",
    response_class=Response,
    responses=problem_responses("TOO_MANY_IDS", "PAYLOAD_TOO_LARGE", *DB_ERRORS),
)
def lot_equipment_route(
    body: LotEquipmentRequest, format: Format = "json", warehouse: Warehouse = Depends(get_warehouse)
) -> Response:
    result = lot_equipment(warehouse, body.input_type, body.values, body.workcenter_groups)
    return _answer(result, format, "lot-equipment.csv")


@router.get(
    "/api/query-tool/split-merge-history",
    summary="Split / combine transactions of a lot: fast (6 months, 500 rows) or full (a job)",
    response_class=Response,
    responses={**JOB_202, **problem_responses(*DB_ERRORS)},
)
def split_merge_history(
    container_id: ContainerId,
    mode: Annotated[str, Query(pattern="^(fast|full)$")] = "fast",
    format: Format = "json",
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    if mode == "full":
        params = split_merge.full_params(container_id)
        query_id = split_merge.full_query_id(params["container_id"])
        submitted = submit_keeping_result(split_merge.FULL_JOB, params, split_merge.DATASET_PREFIX, query_id)
        return accepted_response(submitted)
    result = split_merge.fast_history(warehouse, container_id)
    return _answer(result, format, "split-merge-history.csv")


@router.get(
    "/api/query-tool/split-merge-history/export/{query_id}",
    summary="CSV of a finished full-mode split / merge history job",
    response_class=Response,
    responses=problem_responses("CACHE_EXPIRED"),
)
def split_merge_export(query_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]) -> Response:
    return csv_stream(split_merge.full_csv(query_id), f"split-merge-history-{query_id}.csv")


@router.get(
    "/api/query-tool/equipment-recent-jobs/{equipment_id}",
    summary="The newest jobs of a machine (default: last 30 days, top 5)",
    response_class=Response,
    responses=problem_responses(*DB_ERRORS),
)
def equipment_recent_jobs(
    equipment_id: Annotated[str, Path(min_length=1, max_length=64)],
    days: Annotated[int, Query(ge=1, le=730)] = service.RECENT_JOB_DAYS,
    limit: Annotated[int, Query(ge=1, le=100)] = service.RECENT_JOB_COUNT,
    as_of: Annotated[
        date | None, Query(ge=FIRST_DAY, le=LAST_DAY, description="last day of the window (default: now)")
    ] = None,
    format: Format = "json",
    warehouse: Warehouse = Depends(get_warehouse),
) -> Response:
    result = service.recent_jobs(warehouse, equipment_id, days=days, limit=limit, as_of=as_of)
    return _answer(result, format, "recent-jobs.csv")
