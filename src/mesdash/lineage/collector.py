"""A shared pause of Python's cyclic garbage collector while a genealogy is built.

A 10,000-seed genealogy makes ~100,000 tuples and dicts (walk rows, snapshots, payloads)
that hold no reference cycles, so the collector's full passes over them free nothing; on
the ``large`` warehouse they were ~20 % of ``resolve_full_genealogy``. Reference counting
still frees everything as usual. Pauses nest and overlap across threads: the collector
resumes when the last one ends, and only if it was running when the first began.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class CollectorPause:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._holders += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._resume:
                gc.enable()


COLLECTOR_PAUSE = CollectorPause()


def collector_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` inside the shared pause."""

    @functools.wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with COLLECTOR_PAUSE:
            return fn(*args, **kwargs)

    return paused
