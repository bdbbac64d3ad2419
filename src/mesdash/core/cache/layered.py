"""The two-level cache: L1 (process) → L2 (Redis) → compute, with single-flight.

Redis keys are ``{MESDASH_CACHE_NAMESPACE}:{namespace_prefix}:{key}`` (``redis_key``); the
same string keys L1, so two namespaces never share an entry in either level. Values are
encoded once (``codec``) and the bytes go to both levels; a hit decodes them, so JSON
values come back JSON-native (see ``codec``).

``get_or_compute`` reads L1, then L2 (filling L1 for the key's remaining Redis TTL), then
computes — once per key per process (``SingleFlight``) and, with Redis, once across
processes (``RedisLease`` + ``wait_for_leader``). The result is written to both levels
unless ``write`` is False or ``cacheable(result)`` is False (partial or truncated results);
the caller always gets it. Redis errors never reach the caller.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pyarrow as pa

from mesdash.core.cache import codec
from mesdash.core.cache.l1 import L1Cache, get_l1
from mesdash.core.cache.l2 import L2
from mesdash.core.cache.singleflight import (
    LeaseState,
    RedisLease,
    SingleFlight,
    WaitOutcome,
    wait_for_leader,
)
from mesdash.core.redis_client import key as redis_key
from mesdash.settings import get_settings

T = TypeVar("T")
log = logging.getLogger(__name__)

_MISS: Any = object()
_FALLBACK_L1_TTL = 300.0  # L2 entry without a TTL (not written by us)
_process_flight = SingleFlight()
_instances: weakref.WeakSet[LayeredCache] = weakref.WeakSet()

COUNTERS = (
    "l1_hits",  # answered from L1
    "l2_hits",  # answered from Redis (L1 filled)
    "misses",  # found in neither level
    "computes",  # compute() called
    "singleflight_waits",  # got another caller's result instead of computing (any process)
    "lease_waits",  # waited on another process's lease
    "lease_timeouts",  # ... and gave up waiting (then computed)
    "not_cached",  # computed value not written (write=False, not cacheable, encode error)
    "decode_errors",  # stored bytes that could not be decoded (treated as a miss)
)


def _always(_value: object) -> bool:
    return True


class LayeredCache:
    """L1 + L2 cache of one area (``namespace_prefix``, e.g. ``"cache"`` or ``"batch"``)."""

    def __init__(
        self,
        namespace_prefix: str,
        *,
        l1: L1Cache | None = None,
        l2: L2 | None = None,
        flight: SingleFlight | None = None,
        lease_seconds: float | None = None,
        follower_wait_seconds: float | None = None,
        follower_poll_seconds: float | None = None,
    ) -> None:
        settings = get_settings()
        self.prefix = namespace_prefix
        self.l1 = l1 if l1 is not None else get_l1()
        self.l2 = l2 if l2 is not None else L2()
        self.flight = flight if flight is not None else _process_flight
        self.lease_seconds = lease_seconds or settings.cache_lease_seconds
        self.follower_wait_seconds = (
            settings.cache_follower_wait_seconds if follower_wait_seconds is None else follower_wait_seconds
        )
        self.follower_poll_seconds = follower_poll_seconds or settings.cache_follower_poll_seconds
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        _instances.add(self)

    # --- keys and counters ---------------------------------------------------------------
    def redis_key(self, key: str) -> str:
        """The physical key of ``key`` in Redis (and in L1)."""
        return redis_key(self.prefix, key) if self.prefix else redis_key(key)

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def stats(self) -> dict[str, int]:
        """Counters of this cache plus its L2's error and skip counts (a plain dict)."""
        with self._lock:
            counts = dict(self._counts)
        counts["l2_errors"] = self.l2.errors
        counts["l2_skipped"] = self.l2.skipped
        return counts

    # --- plain get / set -----------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The cached value (L1, then L2), or ``default``."""
        value = self._lookup(self.redis_key(key))
        if value is _MISS:
            self._count("misses")
            return default
        return value

    def set(self, key: str, value: Any, ttl: float) -> bool:
        """Write both levels; True when at least one took it. ``TypeError`` if unencodable."""
        return self._store(self.redis_key(key), codec.encode(value), ttl)

    def delete(self, key: str) -> None:
        pkey = self.redis_key(key)
        self.l1.delete(pkey)
        self.l2.delete(pkey)

    # --- get or compute ------------------------------------------------------------------
    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], T],
        ttl: float,
        *,
        cacheable: Callable[[T], bool] = _always,
        write: bool = True,
    ) -> T:
        """The cached value, or ``compute()`` run once for all concurrent callers."""
        pkey = self.redis_key(key)
        value = self._lookup(pkey)
        if value is not _MISS:
            return cast(T, value)
        self._count("misses")
        result, waited = self.flight.do(pkey, lambda: self._lead(pkey, compute, ttl, cacheable, write))
        if waited:
            self._count("singleflight_waits")
        return result

    def _lead(
        self, pkey: str, compute: Callable[[], T], ttl: float, cacheable: Callable[[T], bool], write: bool
    ) -> T:
        """The in-process leader: re-check L1, then lead or follow across processes."""
        data = self.l1.get(pkey)  # a leader that finished just before us filled it
        if data is not None:
            value = self._decode(pkey, data)
            if value is not _MISS:
                return cast(T, value)
        if not write:  # nothing would reach L2, so other processes could not use our result
            return self._compute_and_store(pkey, compute, ttl, cacheable, write)
        lease = RedisLease(self.l2, pkey + ":lease", self.lease_seconds)
        state = lease.acquire()
        if state is LeaseState.ACQUIRED:
            try:
                data, remaining = self.l2.get(pkey)  # a leader elsewhere may just have finished
                if data is not None:
                    value = self._decode(pkey, data)
                    if value is not _MISS:
                        self.l1.set(pkey, data, remaining or ttl)
                        return cast(T, value)
                return self._compute_and_store(pkey, compute, ttl, cacheable, write)
            finally:
                lease.release()
        if state is LeaseState.HELD:
            value = self._follow(pkey, lease.key)
            if value is not _MISS:
                return cast(T, value)
        return self._compute_and_store(pkey, compute, ttl, cacheable, write)

    def _follow(self, pkey: str, lease_key: str) -> Any:
        """Wait for another process's result in L2; ``_MISS`` when we must compute."""
        self._count("lease_waits")
        result = wait_for_leader(
            self.l2, pkey, lease_key, self.follower_wait_seconds, self.follower_poll_seconds
        )
        if result.outcome is WaitOutcome.TIMEOUT:
            self._count("lease_timeouts")
            log.warning("cache: waited %.1fs for %s, computing here", self.follower_wait_seconds, pkey)
        if result.outcome is not WaitOutcome.VALUE or result.data is None:
            return _MISS
        value = self._decode(pkey, result.data)
        if value is not _MISS:
            self._count("singleflight_waits")
            self.l1.set(pkey, result.data, result.ttl or _FALLBACK_L1_TTL)
        return value

    def _compute_and_store(
        self, pkey: str, compute: Callable[[], T], ttl: float, cacheable: Callable[[T], bool], write: bool
    ) -> T:
        self._count("computes")
        value = compute()
        if not (write and ttl > 0 and cacheable(value)):
            self._count("not_cached")
            return value
        try:
            data = codec.encode(value)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            self._count("not_cached")
            log.warning("cache: cannot encode value for %s (%s); not cached", pkey, exc)
            return value
        self._store(pkey, data, ttl)
        return value

    # --- levels --------------------------------------------------------------------------
    def _lookup(self, pkey: str) -> Any:
        data = self.l1.get(pkey)
        if data is not None:
            value = self._decode(pkey, data)
            if value is not _MISS:
                self._count("l1_hits")
                return value
        data, remaining = self.l2.get(pkey)
        if data is None:
            return _MISS
        value = self._decode(pkey, data)
        if value is not _MISS:
            self._count("l2_hits")
            self.l1.set(pkey, data, remaining or _FALLBACK_L1_TTL)
        return value

    def _store(self, pkey: str, data: bytes, ttl: float) -> bool:
        in_l2 = self.l2.set(pkey, data, ttl)  # L2 first: followers elsewhere see it sooner
        in_l1 = self.l1.set(pkey, data, ttl)
        return in_l1 or in_l2

    def _decode(self, pkey: str, data: bytes) -> Any:
        try:
            return codec.decode(data)
        except (ValueError, pa.ArrowException) as exc:
            self._count("decode_errors")
            log.warning("cache: undecodable entry %s (%s); treated as a miss", pkey, exc)
            self.l1.delete(pkey)
            return _MISS


def all_stats() -> dict[str, dict[str, int]]:
    """Counters of every live ``LayeredCache``, summed per namespace prefix, plus ``l1``."""
    totals: dict[str, dict[str, int]] = {}
    for cache in list(_instances):
        bucket = totals.setdefault(cache.prefix, {})
        for name, value in cache.stats().items():
            bucket[name] = bucket.get(name, 0) + value
    totals["l1"] = get_l1().stats()
    return totals
