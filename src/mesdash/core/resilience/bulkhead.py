"""The slow-query semaphore (bulkhead).

Every slow-path query holds one slot while it runs (``DB_SLOW_MAX_CONCURRENT``). A thread
never holds two: a nested slow query in a thread that already holds a slot reuses it, so a
consumer that queries while iterating cannot deadlock itself. Waiting beyond the bound
raises ``DBBusy`` (503 with a retry hint) instead of hanging.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from mesdash.core.resilience.errors import DBBusy


class Bulkhead:
    def __init__(self, max_concurrent: int, wait_seconds: float, retry_after: float = 5) -> None:
        self.max_concurrent = max(1, max_concurrent)
        self.wait_seconds = wait_seconds
        self.retry_after = retry_after
        self._sem = threading.BoundedSemaphore(self.max_concurrent)
        self._lock = threading.Lock()
        self._local = threading.local()
        self.active = 0
        self.waiting = 0
        self.rejected = 0

    @property
    def available(self) -> int:
        return self.max_concurrent - self.active

    @contextlib.contextmanager
    def slot(self, wait_seconds: float | None = None) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth:  # this thread already holds a slot
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        with self._lock:
            self.waiting += 1
        start = time.monotonic()
        try:
            acquired = self._sem.acquire(timeout=max(0.0, wait))
        finally:
            with self._lock:
                self.waiting -= 1
        if not acquired:
            with self._lock:
                self.rejected += 1
            raise DBBusy(
                f"all {self.max_concurrent} slow-query slots stayed busy for {time.monotonic() - start:.1f}s",
                retry_after=self.retry_after,
            )
        with self._lock:
            self.active += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._lock:
                self.active -= 1
            self._sem.release()

    def snapshot(self) -> dict[str, int | float]:
        return {
            "max_concurrent": self.max_concurrent,
            "active": self.active,
            "waiting": self.waiting,
            "available": self.available,
            "rejected": self.rejected,
            "wait_seconds": self.wait_seconds,
        }
