"""The app factory: error handlers, middleware, every slice's router."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from mesdash import __version__
from mesdash.admin.install import install_admin
from mesdash.core.limits import BodySizeLimit
from mesdash.core.redact import install_redaction
from mesdash.core.resilience.problem import install_problem_handlers, patch_openapi
from mesdash.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_redaction()
    app = FastAPI(
        title="mesdash",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_body_bytes)

    from mesdash.core.jobs.router import router as jobs_router
    from mesdash.lineage.router import router as lineage_router
    from mesdash.msd.router import router as msd_router
    from mesdash.querytool.router import router as querytool_router
    from mesdash.reports.hold.router import router as hold_router
    from mesdash.reports.jobs.router import router as job_query_router
    from mesdash.reports.reject.router import router as reject_router
    from mesdash.reports.resource.router import router as resource_router
    from mesdash.trace.router import router as trace_router
    from mesdash.web.router import router as web_router

    app.include_router(lineage_router)
    app.include_router(trace_router)
    app.include_router(msd_router)  # /api/mid-section-defect/* (msd)
    app.include_router(reject_router)  # /api/reject-history/* (reports/reject)
    app.include_router(hold_router)  # /hold-history, /api/hold-history/* (reports/hold)
    app.include_router(resource_router)  # /resource-history, /api/resource-history/*
    app.include_router(job_query_router)  # /job-query, /api/job-query/* (reports/jobs)
    app.include_router(jobs_router)  # /api/jobs/{id} for every kind of job (core/jobs)
    app.include_router(querytool_router)  # /query-tool, /api/query-tool/* (querytool)
    app.include_router(web_router)
    install_admin(app)  # /health, /health/deep, /metrics, /admin (mesdash.admin)
    patch_openapi(app)
    return app
