"""The error table: one stable code → HTTP status → Retry-After, for code and docs alike.

Every known fault is a ``MesdashError`` carrying its code; the web layer turns it into an
RFC 9457 problem+json response using this table. Messages never hold SQL text or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    title: str
    retry: bool = False  # whether a Retry-After header is sent


ERROR_TABLE: dict[str, ErrorSpec] = {
    "VALIDATION_ERROR": ErrorSpec(400, "Invalid request"),
    "UNAUTHORIZED": ErrorSpec(401, "Authentication required"),
    "FORBIDDEN": ErrorSpec(403, "Not allowed"),
    "NOT_FOUND": ErrorSpec(404, "Not found"),
    "METHOD_NOT_ALLOWED": ErrorSpec(405, "Method not allowed"),
    "JOB_NOT_FINISHED": ErrorSpec(409, "Job not finished"),
    "RESTART_POLICY_BLOCKED": ErrorSpec(409, "Restart blocked by policy"),
    "RESTART_UNSUPPORTED": ErrorSpec(409, "Restart not supported here"),
    "CACHE_EXPIRED": ErrorSpec(410, "Cached dataset expired"),
    "PAYLOAD_TOO_LARGE": ErrorSpec(413, "Request body too large"),
    "TOO_MANY_IDS": ErrorSpec(413, "Too many identifiers"),
    "UNSUPPORTED_MEDIA_TYPE": ErrorSpec(415, "Unsupported media type"),
    "RATE_LIMITED": ErrorSpec(429, "Rate limited", retry=True),
    "RESTART_COOLDOWN": ErrorSpec(429, "Restart cooling down", retry=True),
    "INTERNAL_ERROR": ErrorSpec(500, "Internal error"),
    "DB_ERROR": ErrorSpec(500, "Warehouse query failed"),
    "DB_UNAVAILABLE": ErrorSpec(503, "Warehouse unavailable", retry=True),
    "DB_POOL_EXHAUSTED": ErrorSpec(503, "Warehouse connection pool exhausted", retry=True),
    "DB_BUSY": ErrorSpec(503, "Too many slow queries running", retry=True),
    "CIRCUIT_OPEN": ErrorSpec(503, "Warehouse circuit open", retry=True),
    "QUERY_TIMEOUT": ErrorSpec(504, "Warehouse query timed out"),
    "REDIS_UNAVAILABLE": ErrorSpec(503, "Cache and job store unavailable", retry=True),
}


class MesdashError(Exception):
    """A known fault or bad input with a stable code."""

    code = "INTERNAL_ERROR"

    def __init__(
        self,
        detail: str = "",
        *,
        retry_after: float | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail or ERROR_TABLE[self.code].title)
        self.detail = detail or ERROR_TABLE[self.code].title
        self.retry_after = retry_after
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code].status


def _error(name: str, code: str, doc: str) -> type[MesdashError]:
    return type(name, (MesdashError,), {"code": code, "__doc__": doc})


ValidationFailed = _error("ValidationFailed", "VALIDATION_ERROR", "Bad input.")
Unauthorized = _error("Unauthorized", "UNAUTHORIZED", "No or unknown credentials.")
Forbidden = _error("Forbidden", "FORBIDDEN", "Credentials lack the role.")
NotFound = _error("NotFound", "NOT_FOUND", "No such resource.")
JobNotFinished = _error("JobNotFinished", "JOB_NOT_FINISHED", "Result asked before the end.")
CacheExpired = _error("CacheExpired", "CACHE_EXPIRED", "The dataset behind a view expired.")
PayloadTooLarge = _error("PayloadTooLarge", "PAYLOAD_TOO_LARGE", "Body over the size limit.")
TooManyIds = _error("TooManyIds", "TOO_MANY_IDS", "More identifiers than allowed.")
RateLimited = _error("RateLimited", "RATE_LIMITED", "A rate-limit bucket is full.")



class WarehouseError(MesdashError):
    """Any failure talking to the warehouse (SQL text and credentials never in the message)."""

    code = "DB_ERROR"


class QueryTimeout(WarehouseError):
    """The query ran past its timeout and was cancelled in the database."""

    code = "QUERY_TIMEOUT"


class DBUnavailable(WarehouseError):
    """The warehouse could not be reached (connect failure, connection lost)."""

    code = "DB_UNAVAILABLE"


class PoolExhausted(WarehouseError):
    """No pooled connection became free within the pool wait timeout."""

    code = "DB_POOL_EXHAUSTED"


class DBBusy(WarehouseError):
    """No slow-query slot became free within the wait bound."""

    code = "DB_BUSY"


class CircuitOpen(WarehouseError):
    """The breaker is open: the warehouse is not called."""

    code = "CIRCUIT_OPEN"
