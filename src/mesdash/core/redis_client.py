"""The process's Redis connection (or None without ``MESDASH_REDIS_URL``).

Short socket timeouts keep a dead or paused Redis from stalling a request: callers treat
any ``redis.RedisError`` as "Redis unavailable" and carry on (L1 only, in-process jobs).
``key()`` prefixes every key with the cache namespace so two warehouses never share one.
"""

from __future__ import annotations

import threading
import time

import redis

from mesdash.settings import get_settings

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url: str | None = None


class RedisHealth:
    """Remembers the last Redis failure so health can say "degraded" without probing."""

    last_error: str | None = None
    last_error_at: float | None = None

    @classmethod
    def failed(cls, exc: BaseException) -> None:
        cls.last_error = type(exc).__name__
        cls.last_error_at = time.time()

    @classmethod
    def ok(cls) -> None:
        cls.last_error = None
        cls.last_error_at = None


def get_redis() -> redis.Redis | None:
    """A shared client (bytes in, bytes out), or None when Redis is not configured."""
    global _client, _client_url
    url = get_settings().redis_url
    if not url:
        return None
    with _lock:
        if _client is None or _client_url != url:
            _client = redis.Redis.from_url(
                url,
                socket_timeout=2.0,
                socket_connect_timeout=1.0,
                health_check_interval=15,
                retry_on_timeout=False,
            )
            _client_url = url
        return _client


def key(*parts: object) -> str:
    """``{namespace}:part:part…`` — every Redis key goes through here."""
    return ":".join([get_settings().namespace, *(str(p) for p in parts)])


def reset_redis() -> None:
    global _client, _client_url
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _client_url = None
