"""Cross-process cap on heavy background queries (``HEAVY_QUERY_MAX_CONCURRENT``).

The slow-query semaphore bounds one process; background jobs run in many processes on many
hosts, so their heavy queries also take a slot in Redis: a sorted set of holders scored by
lease expiry (Redis server time), acquired and renewed atomically by a Lua script. A holder
that dies frees its slot when its lease (``HEAVY_QUERY_LEASE_SECONDS``) runs out; a live one
renews at a third of the lease. Waiting longer than ``HEAVY_QUERY_WAIT_SECONDS`` raises
``DBBusy``. Without Redis, with a cap of 0, or when Redis fails, the cap fails open: the
query runs (the per-process semaphore still applies).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis

from mesdash.core.redis_client import get_redis, key
from mesdash.core.resilience.errors import DBBusy
from mesdash.settings import Settings, get_settings

log = logging.getLogger(__name__)

# KEYS[1] holders zset; ARGV: token, limit, lease seconds, renew-only flag → 1 held, 0 not
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held then
  if ARGV[4] == '1' or redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 2000))
return 1
"""


class HeavyQueryCap:
    def __init__(self, settings: Settings | None = None, name: str = "heavy-queries") -> None:
        self.settings = settings or get_settings()
        self.name = name
        self._local = threading.local()

    @property
    def redis_key(self) -> str:
        return key("bulkhead", self.name)

    def _client(self) -> redis.Redis | None:
        return get_redis() if self.settings.heavy_query_max_concurrent > 0 else None

    def _take(self, client: redis.Redis, token: str, renew: bool = False) -> bool:
        s = self.settings
        args = (token, s.heavy_query_max_concurrent, s.heavy_query_lease_seconds, "1" if renew else "0")
        return bool(client.eval(_TAKE, 1, self.redis_key, *args))

    def _acquire(self, client: redis.Redis, token: str, wait_seconds: float) -> bool:
        """True when a slot is held; False when Redis failed (fail open); DBBusy on timeout."""
        deadline = time.monotonic() + wait_seconds
        pause = 0.05
        try:
            while not self._take(client, token):
                if time.monotonic() >= deadline:
                    raise DBBusy(
                        f"all {self.settings.heavy_query_max_concurrent} heavy-query slots stayed busy "
                        f"for {wait_seconds:g}s",
                        retry_after=self.settings.db_busy_retry_after_seconds,
                    )
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.5)
        except redis.RedisError as exc:
            log.warning("heavy-query cap unavailable (%s): running without it", type(exc).__name__)
            return False
        return True

    def _renew(self, client: redis.Redis, token: str, stop: threading.Event) -> None:
        interval = max(0.05, self.settings.heavy_query_lease_seconds / 3)
        while not stop.wait(interval):
            try:
                if not self._take(client, token, renew=True):
                    log.warning("heavy-query slot %s expired before it was renewed", token)
                    return
            except redis.RedisError:
                continue

    @contextlib.contextmanager
    def slot(self, wait_seconds: float | None = None) -> Iterator[bool]:
        """Hold a cross-process slot; yields True when one is held, False when failing open.
        A thread that already holds (or failed open on) a slot reuses that outcome."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield bool(self._local.held)
            finally:
                self._local.depth = depth
            return
        client = self._client()
        if client is None:  # no cap configured, or no Redis
            yield False
            return
        token = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
        wait = self.settings.heavy_query_wait_seconds if wait_seconds is None else wait_seconds
        held = self._acquire(client, token, wait)
        stop = threading.Event()
        if held:
            threading.Thread(target=self._renew, args=(client, token, stop), daemon=True).start()
        self._local.depth, self._local.held = 1, held
        try:
            yield held
        finally:
            self._local.depth = 0
            stop.set()
            if held:
                with contextlib.suppress(redis.RedisError):
                    client.zrem(self.redis_key, token)

    def snapshot(self) -> dict[str, Any]:
        limit = self.settings.heavy_query_max_concurrent
        out: dict[str, Any] = {"max_concurrent": limit, "enabled": limit > 0}
        client = self._client()
        if client is None:
            out["holders"] = None
            return out
        try:
            seconds, micros = client.time()
            out["holders"] = int(client.zcount(self.redis_key, seconds + micros / 1e6, "+inf"))
        except redis.RedisError as exc:
            out["holders"] = None
            out["error"] = type(exc).__name__
        return out
