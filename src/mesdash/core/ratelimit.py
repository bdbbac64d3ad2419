"""Rate limits keyed on (bucket, client): counted in Redis when present, in process otherwise.

Fixed windows anchored at the first hit: the first request of a (bucket, client) opens a
window of ``window_seconds``; requests inside it add their units until ``max_requests`` is
reached; the next one is refused with ``RateLimited`` (429) and ``retry_after`` = the time
until the window closes. A refused request consumes nothing. In Redis one small Lua script
checks, counts (INCRBY) and sets the expiry (PEXPIRE) atomically, so every web process shares
the count; the key is ``{namespace}:rl:{bucket}:{client}``. A Redis error falls back to the
in-process count (fail open: a limiter never turns a request into a 500), and the limiter
stays in process for ``CACHE_L2_BACKOFF_SECONDS`` so a hanging Redis does not slow every call.

The event domains each have a bucket (``EVT_<DOMAIN>_RATE_MAX_REQUESTS`` /
``EVT_<DOMAIN>_RATE_WINDOW_SECONDS``, default 20 per 60 s, ``domain_limit``); a request
costs one unit per requested domain. ``client_identity`` names the client: a hash prefix of
its bearer token when it sends one, its address otherwise.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from starlette.requests import Request

from mesdash.core import redis_client
from mesdash.core.resilience.errors import RateLimited
from mesdash.settings import get_settings

DOMAINS = (
    "history",
    "materials",
    "rejects",
    "holds",
    "jobs",
    "upstream_history",
    "downstream_rejects",
)

# KEYS[1] counter; ARGV units, max, window ms. Returns {allowed 0|1, ms until the window ends}.
_LUA = """
local units = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  if current > 0 then redis.call('PEXPIRE', KEYS[1], window) end
  ttl = window
end
if current + units > limit then
  return {0, ttl}
end
redis.call('INCRBY', KEYS[1], units)
if current == 0 then redis.call('PEXPIRE', KEYS[1], window) end
return {1, ttl}
"""


def domain_limit(domain: str) -> tuple[int, float]:
    """``(max_requests, window_seconds)`` of an event domain's bucket."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; one of {', '.join(DOMAINS)}")
    settings = get_settings()
    return (
        int(getattr(settings, f"evt_{domain}_rate_max_requests")),
        float(getattr(settings, f"evt_{domain}_rate_window_seconds")),
    )


class _LocalWindows:
    """The in-process count: (bucket, client) → (units used, window end), under a lock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.windows: dict[tuple[str, str], tuple[int, float]] = {}

    def hit(self, bucket: str, client: str, units: int, limit: int, window: float) -> float | None:
        """None when allowed, else the seconds until the window ends."""
        now = self.clock()
        with self.lock:
            if len(self.windows) > 10_000:
                self.windows = {k: v for k, v in self.windows.items() if v[1] > now}
            used, ends = self.windows.get((bucket, client), (0, now + window))
            if ends <= now:
                used, ends = 0, now + window
            if used + units > limit:
                return ends - now
            self.windows[(bucket, client)] = (used + units, ends)
            return None


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.local = _LocalWindows(clock)
        self._script: Any = None
        self._redis_skip_until = 0.0  # after a Redis error, in process only until then

    def _redis_hit(self, conn: redis.Redis, key: str, units: int, limit: int, window: float) -> float | None:
        if self._script is None:
            self._script = conn.register_script(_LUA)  # EVALSHA, loading the script when missing
        window_ms = max(1, math.ceil(window * 1000))
        allowed, ttl_ms = self._script(keys=[key], args=[units, limit, window_ms], client=conn)
        return None if int(allowed) else max(int(ttl_ms), 1) / 1000

    def _count(self, bucket: str, client: str, units: int, limit: int, window: float) -> float | None:
        conn = redis_client.get_redis()
        if conn is not None and time.monotonic() >= self._redis_skip_until:
            try:
                return self._redis_hit(conn, redis_client.key("rl", bucket, client), units, limit, window)
            except redis.RedisError as exc:  # fail open to the in-process count, for a while
                redis_client.RedisHealth.failed(exc)
                self._redis_skip_until = time.monotonic() + get_settings().cache_l2_backoff_seconds
        return self.local.hit(bucket, client, units, limit, window)

    def hit(
        self,
        bucket: str,
        client: str,
        units: int = 1,
        *,
        max_requests: int | None = None,
        window_seconds: float | None = None,
    ) -> None:
        """Count ``units`` for (bucket, client) or raise ``RateLimited`` with ``retry_after``.
        Without ``max_requests``/``window_seconds`` the bucket must be an event domain."""
        if max_requests is None or window_seconds is None:
            default_max, default_window = domain_limit(bucket)
            max_requests = default_max if max_requests is None else max_requests
            window_seconds = default_window if window_seconds is None else window_seconds
        wait = self._count(bucket, client, units, max_requests, window_seconds)
        if wait is not None:
            raise RateLimited(
                f"rate limit of {max_requests} per {window_seconds:g} s reached for {bucket!r}",
                retry_after=wait,
                extra={"bucket": bucket},
            )

    def hit_domains(self, domains: Iterable[str], client: str) -> None:
        """One unit in each requested domain's bucket (stops at the first full one)."""
        for domain in dict.fromkeys(domains):
            self.hit(domain, client)


def client_identity(request: Request) -> str:
    """``token:{sha256[:16]}`` of the Authorization header's credentials, else
    ``addr:{client address}`` — usable as a FastAPI dependency."""
    header = request.headers.get("authorization", "").strip()
    if header:
        scheme, _, credentials = header.partition(" ")
        secret = credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else header
        return "token:" + hashlib.sha256(secret.encode()).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "unknown")


_lock = threading.Lock()
_limiter: RateLimiter | None = None


def get_rate_limiter() -> RateLimiter:
    """The process's limiter (its in-process count is shared by every request)."""
    global _limiter
    with _lock:
        if _limiter is None:
            _limiter = RateLimiter()
        return _limiter


def reset_rate_limiter() -> None:
    global _limiter
    with _lock:
        _limiter = None


__all__ = [
    "DOMAINS",
    "RateLimiter",
    "client_identity",
    "domain_limit",
    "get_rate_limiter",
    "reset_rate_limiter",
]
