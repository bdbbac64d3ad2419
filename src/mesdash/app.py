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

    from mesdash.lineage.router import router as lineage_router
    from mesdash.trace.router import router as trace_router
    from mesdash.web.router import router as web_router

    app.include_router(lineage_router)
    app.include_router(trace_router)
    app.include_router(web_router)
    install_admin(app)  # /health, /health/deep, /metrics, /admin (mesdash.admin)
    patch_openapi(app)
    return app
