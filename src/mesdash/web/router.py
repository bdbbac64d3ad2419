"""The web shell: pages, static files, plotly.js and the warehouse summary API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from mesdash.core.resilience.problem import problem_responses
from mesdash.web.pages import STATIC_DIR, render
from mesdash.web.schemas import WarehouseSummary
from mesdash.web.summary import warehouse_summary
from mesdash.web.vendor import plotly_js_path

router = APIRouter()
VENDOR_CACHE = "public, max-age=31536000, immutable"
WAREHOUSE_ERRORS = (
    "DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "CIRCUIT_OPEN", "QUERY_TIMEOUT"
)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> Response:
    return render(request, "home.html", title="Home", plotly=True)


@router.get(
    "/api/warehouse/summary",
    response_model=WarehouseSummary,
    tags=["warehouse"],
    summary="Row count and date span of every warehouse table",
    responses=problem_responses(*WAREHOUSE_ERRORS),
)
def get_warehouse_summary() -> WarehouseSummary:
    return warehouse_summary()


@router.get("/static/vendor/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    """plotly.js from the installed plotly package, cacheable for a year (URL is versioned)."""
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": VENDOR_CACHE},
    )


# After the vendor route, so that route wins over the mount for its path.
router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
