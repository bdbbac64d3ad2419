"""Imported by a worker subprocess in the trace-job tests: every event batch sleeps
``TEST_TRACE_BATCH_DELAY`` seconds first, so a test can act while a job is mid-way."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from mesdash.trace.events import EventFetcher

_original = EventFetcher.batch_rows
DELAY = float(os.environ.get("TEST_TRACE_BATCH_DELAY", "0"))


def _slow(self: EventFetcher, domain: str, ids: Any, as_of: datetime) -> Iterator[list[dict[str, Any]]]:
    time.sleep(DELAY)
    yield from _original(self, domain, ids, as_of)


EventFetcher.batch_rows = _slow  # type: ignore[method-assign]
