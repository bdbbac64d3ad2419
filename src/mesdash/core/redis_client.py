"""The process's Redis connection (or None without ``MESDASH_REDIS_URL``).

Short socket timeouts keep a dead or paused Redis from stalling a request: callers treat
any ``redis.RedisError`` as "Redis unavailable" and carry on (L1 only, in-process jobs).
``key()`` prefixes every key with the cache namespace so two warehouses never share one.
The pool closes sockets idle for ``REDIS_MAX_IDLE_SECONDS`` (see ``IdleClosingPool``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from mesdash.settings import get_settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url: str | None = None
_trimmer_stop: threading.Event | None = None  # set: this process's idle closer stops


class IdleClosingPool(redis.ConnectionPool):
    """A connection pool that closes the socket of a connection idle for ``max_idle``
    seconds; the connection stays in the pool and reconnects when it is used again.

    redis-py has no idle timeout (psycopg_pool's ``max_idle`` is the PostgreSQL side's): every
    connection a concurrency peak opened stayed open until the process ended, so a web
    worker held one more idle socket after each new peak (seen in the 30-minute soak as
    open descriptors that never came back). Written here because no option of redis-py does
    it; it touches the base pool's idle list only under the pool's own lock, where
    ``get_connection`` takes connections from it."""

    def __init__(
        self, *args: Any, max_idle: float, clock: Callable[[], float] = time.monotonic, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_idle = max_idle
        self.clock = clock
        self._released_at: dict[int, float] = {}  # id(connection) → when it went back to the pool

    def release(self, connection: Any) -> None:
        self._released_at[id(connection)] = self.clock()
        super().release(connection)

    def close_idle(self) -> int:
        """Close the sockets of connections idle for ``max_idle``; how many were open."""
        now, closed = self.clock(), 0
        with self._lock:
            for connection in self._available_connections:
                idle_since = self._released_at.get(id(connection), now)
                if now - idle_since >= self.max_idle and getattr(connection, "_sock", None) is not None:
                    connection.disconnect()
                    closed += 1
        return closed


def _close_idle_every(pool: IdleClosingPool, stop: threading.Event) -> None:
    period = max(1.0, pool.max_idle / 4)
    while not stop.wait(period):
        try:
            pool.close_idle()
        except Exception:  # a failed pass must not end the loop
            log.exception("closing idle Redis connections failed")


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
            _drop_client()
            pool = IdleClosingPool.from_url(
                url,
                max_idle=get_settings().redis_max_idle_seconds,
                socket_timeout=2.0,
                socket_connect_timeout=1.0,
                health_check_interval=15,
                retry_on_timeout=False,
            )
            _client = redis.Redis(connection_pool=pool)
            _client_url = url
        if _trimmer_stop is None and isinstance(_client.connection_pool, IdleClosingPool):
            _start_trimmer(_client.connection_pool)
        return _client


def key(*parts: object) -> str:
    """``{namespace}:part:part…`` — every Redis key goes through here."""
    return ":".join([get_settings().namespace, *(str(p) for p in parts)])


def _start_trimmer(pool: IdleClosingPool) -> None:
    global _trimmer_stop
    _trimmer_stop = threading.Event()
    threading.Thread(
        target=_close_idle_every, args=(pool, _trimmer_stop), name="redis-idle-close", daemon=True
    ).start()


def _forget_trimmer() -> None:
    """In a forked child: the parent's closer thread did not come along, the next
    ``get_redis`` starts the child's own (gunicorn workers, RQ work horses)."""
    global _trimmer_stop
    _trimmer_stop = None


os.register_at_fork(after_in_child=_forget_trimmer)


def _drop_client() -> None:
    """Stop the idle closer and close the client's sockets (``close()`` leaves a pool it was
    given open). The caller holds ``_lock``."""
    global _client, _client_url
    if _trimmer_stop is not None:
        _trimmer_stop.set()
    _forget_trimmer()
    if _client is not None:
        _client.connection_pool.disconnect()
        _client.close()
    _client = None
    _client_url = None


def reset_redis() -> None:
    with _lock:
        _drop_client()
