"""L2: Redis, through the process's shared client (``core.redis_client``).

Every operation goes through ``L2.run``: a ``redis.RedisError`` becomes the caller's
default (a miss, a skipped write), is recorded in ``RedisHealth`` and is never raised.
After a failure the same Redis URL is left alone for ``CACHE_L2_BACKOFF_SECONDS`` so a dead
or hung server costs one timeout, not one per request; the first success clears the health
flag again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from mesdash.core.redis_client import RedisHealth, get_redis
from mesdash.settings import get_settings

T = TypeVar("T")

_backoff_lock = threading.Lock()
_down_until: dict[str, float] = {}  # redis URL → monotonic time until which it is skipped


def reset_l2_backoff() -> None:
    """Forget every back-off (tests)."""
    with _backoff_lock:
        _down_until.clear()


class L2:
    """Redis get / set with TTL that degrades to "no Redis" instead of raising."""

    def __init__(
        self, backoff_seconds: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._backoff = backoff_seconds
        self._clock = clock
        self.errors = 0
        self.skipped = 0

    @property
    def backoff_seconds(self) -> float:
        if self._backoff is not None:
            return self._backoff
        return get_settings().cache_l2_backoff_seconds

    def client(self) -> redis.Redis | None:
        """The Redis client, or None without Redis or while backing off after a failure."""
        url = get_settings().redis_url
        if not url:
            return None
        with _backoff_lock:
            if self._clock() < _down_until.get(url, float("-inf")):
                self.skipped += 1
                return None
        return get_redis()

    def run(self, op: Callable[[redis.Redis], T], default: T) -> T:
        """``op(client)``, or ``default`` without Redis or when Redis fails."""
        client = self.client()
        if client is None:
            return default
        try:
            result = op(client)
        except redis.RedisError as exc:
            self.errors += 1
            RedisHealth.failed(exc)
            url = get_settings().redis_url
            if url:
                with _backoff_lock:
                    _down_until[url] = self._clock() + self.backoff_seconds
            return default
        RedisHealth.ok()
        return result

    def get(self, key: str) -> tuple[bytes | None, float | None]:
        """(value, remaining TTL in seconds or None when it has none); (None, None) on a miss."""

        def op(client: redis.Redis) -> tuple[bytes | None, float | None]:
            pipe = client.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            data, pttl = pipe.execute()
            if data is None:
                return None, None
            return bytes(data), (pttl / 1000.0 if pttl and pttl > 0 else None)

        miss: tuple[bytes | None, float | None] = (None, None)
        return self.run(op, miss)

    def set(self, key: str, data: bytes, ttl: float) -> bool:
        """Store ``data`` for ``ttl`` seconds; False when the write was skipped."""
        millis = max(1, int(ttl * 1000))
        return self.run(lambda client: bool(client.set(key, data, px=millis)), False)

    def delete(self, key: str) -> bool:
        return self.run(lambda client: bool(client.delete(key)), False)
