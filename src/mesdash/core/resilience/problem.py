"""RFC 9457 problem+json responses and the FastAPI exception handlers.

Every known fault maps through the error table (``errors.ERROR_TABLE``); validation errors
are 400 ``VALIDATION_ERROR`` (not FastAPI's 422); nothing answers a bare 500 with a stack
trace outside the development profile.
"""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any

import orjson
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mesdash.core.redact import redact
from mesdash.core.resilience.errors import ERROR_TABLE, MesdashError
from mesdash.settings import get_settings

log = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
_HTTP_CODES = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def problem_body(
    code: str,
    detail: str,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec = ERROR_TABLE.get(code, ERROR_TABLE["INTERNAL_ERROR"])
    body: dict[str, Any] = {
        "type": f"/problems/{code.lower().replace('_', '-')}",
        "title": spec.title,
        "status": status or spec.status,
        "detail": detail,
        "code": code,
    }
    if spec.retry or retry_after is not None:
        body["retry_after_seconds"] = max(1, math.ceil(retry_after or 1))
    body.update(extra or {})
    return body


def problem_response(code: str, detail: str, **kwargs: Any) -> Response:
    body = problem_body(code, detail, **kwargs)
    headers = {}
    if "retry_after_seconds" in body:
        headers["Retry-After"] = str(body["retry_after_seconds"])
    return Response(
        orjson.dumps(body), status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    items = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "request"
        items.append({"field": field, "message": str(err.get("msg", "invalid"))})
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5]) or "invalid request"
    return detail, items


async def _mesdash_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MesdashError)
    return problem_response(exc.code, redact(exc.detail), retry_after=exc.retry_after, extra=exc.extra)


async def _redis_down(request: Request, exc: Exception) -> Response:
    """Redis lost mid-request (datasets, chunks, job state live there): a degraded 503 with
    a retry hint, never a 500; cache-only paths fall back to L1 before they get here."""
    log.warning("redis unavailable on %s %s: %s", request.method, request.url.path, redact(repr(exc)))
    wait = get_settings().redis_unavailable_retry_after_seconds
    return problem_response("REDIS_UNAVAILABLE", "Redis is not answering; retry shortly", retry_after=wait)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail, items = _validation_message(list(exc.errors()))
    return problem_response("VALIDATION_ERROR", detail, extra={"errors": items})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "VALIDATION_ERROR" if exc.status_code < 500 else "INTERNAL_ERROR")
    return problem_response(code, str(exc.detail), status=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, redact(repr(exc)))
    extra = {}
    if get_settings().env == "development":
        extra["traceback"] = redact("".join(traceback.format_exception(exc)))
    return problem_response("INTERNAL_ERROR", "unexpected server error", extra=extra)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MesdashError, _mesdash_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for redis_fault in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        app.add_exception_handler(redis_fault, _redis_down)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(ERROR_TABLE)},
        "retry_after_seconds": {"type": "integer"},
    },
}


# What a route that reads the warehouse may answer besides its own errors.
DB_ERRORS = ("DB_ERROR", "DB_UNAVAILABLE", "DB_POOL_EXHAUSTED", "DB_BUSY", "CIRCUIT_OPEN", "QUERY_TIMEOUT")


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each listed code's status documented as problem+json."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in ("VALIDATION_ERROR", *codes):
        status = ERROR_TABLE[code].status
        out[status] = {
            "description": ERROR_TABLE[code].title,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def patch_openapi(app: FastAPI) -> None:
    """Replace FastAPI's 422 with our 400 problem+json in the OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        bad = {
            "description": "Invalid request",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.get("responses", {})
                if responses.pop("422", None) is not None or op.get("parameters") or op.get("requestBody"):
                    responses.setdefault("400", bad)
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def jsonable_bytes(payload: Any) -> bytes:
    """orjson with NaN → null (orjson's default), datetime → ISO 8601, Decimal → number."""
    return orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(payload: Any) -> Response:
    """A 200 ``application/json`` answer serialized with ``jsonable_bytes``."""
    return Response(jsonable_bytes(payload), media_type="application/json")


def _default(value: Any) -> Any:
    import datetime
    import decimal

    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
