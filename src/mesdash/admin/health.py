"""``GET /health`` (public, cheap) and ``GET /health/deep`` (admin).

Both are memoized for ``HEALTH_MEMO_SECONDS`` (5 s; 0 — no memo — in the testing profile)
so monitor scrapes never multiply warehouse probes; concurrent callers on an expired memo
wait for the one computation in flight. /health answers 503 if and only if the
warehouse's own ``SELECT 1`` fails.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mesdash.admin.auth import Principal, require_admin
from mesdash.admin.deep import deep_payload
from mesdash.admin.diagnostics import health_payload
from mesdash.admin.schemas import HealthPayload
from mesdash.core.resilience.problem import jsonable_bytes, problem_responses
from mesdash.settings import Settings, get_settings

router = APIRouter(tags=["health"])


class Memo:
    """One payload, recomputed at most every ``ttl`` seconds (single-flight)."""

    def __init__(self, compute: Callable[[Settings], dict[str, Any]]) -> None:
        self.compute = compute
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._expires = 0.0

    def get(self, settings: Settings) -> dict[str, Any]:
        ttl = settings.health_memo_seconds
        if ttl <= 0:
            return self.compute(settings)
        with self._lock:
            if self._value is None or time.monotonic() >= self._expires:
                self._value = self.compute(settings)
                self._expires = time.monotonic() + ttl
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


HEALTH = Memo(health_payload)
DEEP = Memo(deep_payload)


def _answer(payload: dict[str, Any]) -> Response:
    headers = {"Cache-Control": "no-store"}
    status = 200
    if payload["status"] == "unhealthy":  # a 503 says when to look again, like every 503
        status = 503  # the next probe is worth making once the memoized answer has expired
        headers["Retry-After"] = str(max(1, math.ceil(get_settings().health_memo_seconds)))
    body = jsonable_bytes(payload)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthPayload, "description": "healthy or degraded"},
    503: {"model": HealthPayload, "description": "unhealthy: the warehouse does not answer"},
}


@router.get(
    "/health", summary="Service health (cheap, memoized)", response_class=Response, responses=HEALTH_RESPONSES
)
def health() -> Response:
    return _answer(HEALTH.get(get_settings()))


@router.get(
    "/health/deep",
    summary="Detailed diagnostics (admin)",
    response_class=Response,
    responses={**HEALTH_RESPONSES, **problem_responses("UNAUTHORIZED", "FORBIDDEN")},
)
def health_deep(_: Principal = Depends(require_admin)) -> Response:
    return _answer(DEEP.get(get_settings()))
