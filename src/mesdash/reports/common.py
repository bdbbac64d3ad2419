"""Route plumbing the period reports share: the page, the primary query's answer (its
dataset built now, or a job above ``REPORT_JOB_THRESHOLD_DAYS``) and the responses their
routes document. Handlers stay thin: parse, call one of these or a view, answer JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mesdash.core.batch.dataset import DatasetInfo, usable_dataset
from mesdash.core.db import Warehouse
from mesdash.core.resilience.problem import DB_ERRORS, json_response, problem_responses
from mesdash.reports import background
from mesdash.reports.params import DateRange, dataset_fields
from mesdash.web.pages import render

VIEW_ERRORS = problem_responses("CACHE_EXPIRED")  # a view reads the cached dataset only
QUERY_RESPONSES = {**problem_responses(*DB_ERRORS), **background.ACCEPTED}


class ReportService(Protocol):
    """What ``query_or_job`` needs of a report's service module."""

    PREFIX: str

    def query_id_for(self, query: Any) -> str: ...

    def build(self, query: Any, wh: Warehouse) -> DatasetInfo: ...


def add_page(router: APIRouter, path: str, template: str, title: str) -> None:
    """``GET path``: the report's page (with Plotly), left out of the OpenAPI document."""

    def page(request: Request) -> Response:
        return render(request, template, title=title, plotly=True)

    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)


def query_or_job(
    report: str,
    query: DateRange,
    service: ReportService,
    warehouse: Warehouse,
    first_views: Callable[[str], dict[str, Any]],
) -> Response:
    """A range above ``REPORT_JOB_THRESHOLD_DAYS``: 202 with the job that builds the dataset
    (its result holds the same dataset fields) — unless that dataset is kept already, then
    200 at once: a 202 could name a finished job whose record expires before the client's
    first poll. Otherwise build it now and answer its fields and the views the page shows
    first (``first_views(query_id)``)."""
    if background.runs_as_job(query):
        query_id = service.query_id_for(query)
        info = usable_dataset(service.PREFIX, query_id)
        if info is None:
            return background.start(report, query, service.PREFIX, query_id)
    else:
        info = service.build(query, warehouse)
    return json_response({**dataset_fields(info), **first_views(info.query_id)})
