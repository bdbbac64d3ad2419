"""The process's resilience objects, built from settings: one breaker per warehouse."""

from __future__ import annotations

from mesdash.core.resilience.breaker import CircuitBreaker
from mesdash.settings import Settings, get_settings


def make_breaker(settings: Settings | None = None) -> CircuitBreaker:
    s = settings or get_settings()
    return CircuitBreaker(
        "warehouse",
        enabled=s.circuit_breaker_enabled,
        window_size=s.circuit_breaker_window_size,
        min_failures=s.circuit_breaker_min_failures,
        failure_rate=s.circuit_breaker_failure_rate,
        open_wait_seconds=s.circuit_breaker_open_wait_seconds,
        half_open_permits=s.circuit_breaker_half_open_permits,
        slow_call_seconds=s.circuit_breaker_slow_call_seconds,
    )
