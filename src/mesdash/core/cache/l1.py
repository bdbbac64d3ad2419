"""L1: the in-process cache of encoded values.

Bounded by entries *and* by bytes (the length of the encoded value), TTL per entry,
least-recently-used eviction among live entries, one lock. It holds encoded bytes, not
Python objects: the byte bound is exact and no caller can mutate another caller's result.
``get_l1()`` is the process's shared instance, sized by ``CACHE_L1_MAX_ENTRIES`` and
``CACHE_L1_MAX_BYTES``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cachetools import TLRUCache

from mesdash.settings import get_settings

_Entry = tuple[bytes, float]  # (encoded value, ttl seconds)


def _expires(_key: str, entry: _Entry, now: float) -> float:
    return now + entry[1]


def _size(entry: _Entry) -> int:
    return len(entry[0])


class _CountingTLRU(TLRUCache[str, _Entry]):
    """TLRUCache that counts evictions of live entries (expiry is not an eviction)."""

    evictions = 0

    def popitem(self) -> tuple[str, _Entry]:
        item = super().popitem()
        self.evictions += 1
        return item


class L1Cache:
    """Thread-safe bytes cache bounded by ``max_entries`` and ``max_bytes``."""

    def __init__(self, max_entries: int, max_bytes: int, timer: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("L1 bounds must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cache = _CountingTLRU(maxsize=max_bytes, ttu=_expires, timer=timer, getsizeof=_size)
        self._hits = 0
        self._misses = 0
        self._too_large = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry: _Entry | None = self._cache.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._hits += 1
            return entry[0]

    def set(self, key: str, data: bytes, ttl: float) -> bool:
        """Store ``data`` for ``ttl`` seconds; False when it is larger than the whole cache."""
        with self._lock:
            if len(data) > self.max_bytes or ttl <= 0:
                self._cache.pop(key, None)
                self._too_large += ttl > 0
                return False
            if key not in self._cache:
                while len(self._cache) >= self.max_entries:
                    self._cache.popitem()
            self._cache[key] = (data, float(ttl))
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._cache

    def stats(self) -> dict[str, int]:
        with self._lock:
            entries = len(self._cache)  # drops expired entries first
            return {
                "hits": self._hits,
                "misses": self._misses,
                "entries": entries,
                "bytes": int(self._cache.currsize),
                "evictions": self._cache.evictions,
                "too_large": self._too_large,
                "max_entries": self.max_entries,
                "max_bytes": self.max_bytes,
            }


_shared: L1Cache | None = None
_shared_lock = threading.Lock()


def get_l1() -> L1Cache:
    """The process's shared L1 (created on first use from the settings)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            settings = get_settings()
            _shared = L1Cache(settings.cache_l1_max_entries, settings.cache_l1_max_bytes)
        return _shared


def reset_l1() -> None:
    """Forget the shared L1 (tests; settings changed)."""
    global _shared
    with _shared_lock:
        _shared = None
