"""BatchQueryEngine: run a plan chunk by chunk, cache each chunk, report progress.

``execute_plan`` skips chunks already cached, runs the rest (on a thread pool capped by the
free slow-query slots), checks each result's memory against ``BATCH_CHUNK_MAX_MEMORY_MB``,
retries a transient warehouse error once, marks a failed chunk and carries on, and rewrites
the progress record after every chunk. A time chunk that ends before today's factory day
is *closed* and cached for ``BATCH_CLOSED_CHUNK_TTL``; the chunk holding today is cached
for at most ``BATCH_OPEN_CHUNK_TTL``; id chunks for ``chunk_ttl`` (``BATCH_CHUNK_TTL``). The
progress record lives as long as the longest-lived chunk of the plan, not longer.

One plan runs once at a time across processes: ``ChunkStore.plan_lock``, a short lease its
holder renews; a second caller waits for it at most ``CACHE_FOLLOWER_WAIT_SECONDS`` and then
skips the chunks the holder cached — or, when the holder died, as soon as its lease ran out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from mesdash.core.batch.plan import Chunk, plan_params
from mesdash.core.batch.store import ChunkStore
from mesdash.core.cache.keys import query_hash as make_hash
from mesdash.core.factory_day import day_of
from mesdash.core.resilience.bulkhead import Bulkhead
from mesdash.core.resilience.errors import DBBusy, DBUnavailable, QueryTimeout
from mesdash.settings import get_settings

log = logging.getLogger(__name__)

QueryFn = Callable[[Chunk, int | None], pa.Table]
TRANSIENT = (DBUnavailable, QueryTimeout, DBBusy)


class ChunkTooLarge(Exception):
    """A chunk's Arrow memory exceeded ``BATCH_CHUNK_MAX_MEMORY_MB``."""


@dataclass
class PlanResult:
    """What ``execute_plan`` did; ``quality`` follows the design's quality contract."""

    query_hash: str
    cache_prefix: str
    total: int
    executed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    failed_ranges: list[str] = field(default_factory=list)
    truncated_ranges: list[str] = field(default_factory=list)
    rows: int = 0  # rows read by this run (cached chunks not counted)
    as_of: str = ""

    @property
    def status(self) -> str:
        if not self.failed:
            return "completed"
        return "failed" if len(self.failed) == self.total else "partial"

    @property
    def quality(self) -> dict[str, Any]:
        reasons = []
        if self.failed:
            reasons.append("chunk_failed")
        if self.truncated_ranges:
            reasons.append("row_limit")
        state = "partial" if self.failed else "truncated" if self.truncated_ranges else "complete"
        return {
            "status": state,
            "reasons": reasons,
            "observed_rows": self.rows,
            "failed_ranges": list(self.failed_ranges),
        }


class _Progress:
    """The plan's progress record, rewritten (thread-safely) after every chunk."""

    def __init__(self, store: ChunkStore, result: PlanResult, ttl: int) -> None:
        self.store = store
        self.result = result
        self.ttl = ttl
        self.lock = threading.Lock()

    def publish(self, running: bool) -> None:
        r = self.result
        done = len(r.executed) + len(r.skipped) - len(r.failed)
        finished = done + len(r.failed)
        meta = {
            "total": r.total,
            "completed": done,
            "failed": len(r.failed),
            "pct": int(100 * finished / r.total) if r.total else 100,
            "status": "running" if running else r.status,
            "has_partial_failure": bool(r.failed),
            "failed_ranges": r.failed_ranges,
            "failed_indices": sorted(r.failed),
            "truncated_ranges": r.truncated_ranges,
            "rows_read": r.rows,
            "as_of": r.as_of,
        }
        self.store.write_meta(meta, self.ttl)


def chunk_ttl_for(chunk: Chunk, today: date, chunk_ttl: int) -> int:
    """Closed time chunk: ``BATCH_CLOSED_CHUNK_TTL``; open one: at most ``BATCH_OPEN_CHUNK_TTL``."""
    settings = get_settings()
    if chunk.end is None:
        return chunk_ttl
    if chunk.is_closed(today):
        return settings.batch_closed_chunk_ttl
    return min(chunk_ttl, settings.batch_open_chunk_ttl)


def effective_parallelism(parallel: int, bulkhead: Bulkhead | None) -> int:
    """``min(parallel, free slow-query slots − 1)``, at least 1."""
    if parallel <= 1:
        return 1
    if bulkhead is None:
        from mesdash.core.db.warehouse import get_warehouse

        bulkhead = get_warehouse().bulkhead
    return max(1, min(parallel, bulkhead.available - 1))


def _run_chunk(chunk: Chunk, query_fn: QueryFn, max_rows: int | None) -> pa.Table:
    """``query_fn`` with one retry of a transient warehouse error, then the memory guard."""
    try:
        table = query_fn(chunk, max_rows)
    except TRANSIENT as exc:
        log.warning("batch chunk %s: %s, retrying once", chunk.label, type(exc).__name__)
        table = query_fn(chunk, max_rows)
    limit = get_settings().batch_chunk_max_memory_mb * 1024 * 1024
    if table.nbytes > limit:
        raise ChunkTooLarge(f"chunk {chunk.label} holds {table.nbytes} bytes, over {limit}")
    return table


def execute_plan(
    chunks: Sequence[Chunk],
    query_fn: QueryFn,
    parallel: int = 1,
    query_hash: str | None = None,
    skip_cached: bool = True,
    cache_prefix: str = "",
    chunk_ttl: int | None = None,
    max_rows_per_chunk: int | None = None,
    *,
    bulkhead: Bulkhead | None = None,
    now: Callable[[], datetime] = datetime.now,
) -> PlanResult:
    """Run every chunk not already cached; returns what ran, what failed, and the quality.
    ``chunk_ttl`` (default ``BATCH_CHUNK_TTL``) is the lifetime of id chunks and the cap of
    the open time chunk's."""
    settings = get_settings()
    chunk_ttl = settings.batch_chunk_ttl if chunk_ttl is None else chunk_ttl
    qhash = query_hash or make_hash(plan_params(chunks), ordered=("chunks",))
    store = ChunkStore(cache_prefix, qhash)
    started = now()
    today = day_of(started)
    result = PlanResult(qhash, cache_prefix, len(chunks), as_of=started.isoformat(timespec="seconds"))
    ttls = {c.index: chunk_ttl_for(c, today, chunk_ttl) for c in chunks}
    progress = _Progress(store, result, max(ttls.values(), default=chunk_ttl))

    def one(chunk: Chunk) -> None:
        failure: str | None = None
        try:
            table = _run_chunk(chunk, query_fn, max_rows_per_chunk)
            if not store.put(chunk.index, table, ttls[chunk.index]):
                failure = "the chunk store refused it (too large for the cache)"
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
        with progress.lock:
            result.executed.append(chunk.index)
            if failure is not None:
                log.error("batch %s:%s chunk %s failed: %s", cache_prefix, qhash, chunk.label, failure)
                result.failed.append(chunk.index)
                result.failed_ranges.append(chunk.label)
            else:
                result.rows += table.num_rows
                if max_rows_per_chunk is not None and table.num_rows >= max_rows_per_chunk:
                    result.truncated_ranges.append(chunk.label)
            progress.publish(running=True)

    with store.plan_lock(settings.cache_follower_wait_seconds):
        # a cached chunk that hit the row limit stays marked truncated (never "complete")
        was_truncated = set((store.read_meta() or {}).get("truncated_ranges", []))
        todo = []
        for chunk in chunks:
            if skip_cached and store.has(chunk.index):
                result.skipped.append(chunk.index)
                if chunk.label in was_truncated:
                    result.truncated_ranges.append(chunk.label)
            else:
                todo.append(chunk)
        progress.publish(running=bool(todo))
        workers = effective_parallelism(parallel, bulkhead) if len(todo) > 1 else 1
        if workers == 1:
            for chunk in todo:
                one(chunk)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
                for future in [pool.submit(one, c) for c in todo]:
                    future.result()
        labels = {c.index: c.label for c in chunks}
        result.failed.sort()
        result.failed_ranges = [labels[i] for i in result.failed]
        position = {label: i for i, label in labels.items()}
        result.truncated_ranges.sort(key=lambda label: position.get(label, -1))
        progress.publish(running=False)
    return result


def read_progress(cache_prefix: str, query_hash: str) -> dict[str, Any] | None:
    """The progress record of a plan (None when unknown or expired)."""
    return ChunkStore(cache_prefix, query_hash).read_meta()
