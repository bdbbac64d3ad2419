"""Assemble a plan's cached chunks: lazily, into one Arrow table, or spilled to Parquet.

``merge_chunks`` keeps chunks in memory until the running total passes
``REJECT_ENGINE_MAX_TOTAL_ROWS`` rows or ``REJECT_ENGINE_MAX_RESULT_MB`` MB; from then on it
writes chunk by chunk into a spool file and holds nothing. Chunks whose column sets differ
are an error (``ChunkColumnsMismatch``), never a silent mix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mesdash.core.batch.spool import QuerySpool, SpoolEntry
from mesdash.core.batch.store import ChunkStore
from mesdash.core.resilience.errors import CacheExpired
from mesdash.settings import get_settings

log = logging.getLogger(__name__)


class ChunkColumnsMismatch(ValueError):
    """Two chunks of one plan came back with different column sets."""


@dataclass
class MergeResult:
    """One Arrow table, or (spilled) a spool entry holding the same rows."""

    rows: int
    columns: list[str]
    table: pa.Table | None = None
    spool: SpoolEntry | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spilled(self) -> bool:
        return self.spool is not None

    @property
    def quality(self) -> dict[str, Any]:
        failed = list(self.meta.get("failed_ranges", []))
        truncated = list(self.meta.get("truncated_ranges", []))
        status = "partial" if failed else "truncated" if truncated else "complete"
        reasons = (["chunk_failed"] if failed else []) + (["row_limit"] if truncated else [])
        return {"status": status, "reasons": reasons, "observed_rows": self.rows, "failed_ranges": failed}


def _plan_meta(store: ChunkStore) -> dict[str, Any]:
    meta = store.read_meta()
    if meta is None:
        raise CacheExpired(
            f"batch {store.prefix}:{store.query_hash}: no progress record (expired or never run)"
        )
    return meta


def iterate_chunks(
    cache_prefix: str, query_hash: str, recompute: Callable[[int], pa.Table] | None = None
) -> Iterator[pa.Table]:
    """The plan's chunks in index order, one at a time; failed chunks are left out.

    Column order follows the first chunk; a different column set raises
    ``ChunkColumnsMismatch``; a completed chunk gone from the cache (its TTL ran out after
    the plan) raises ``CacheExpired`` — or, with ``recompute``, is computed again by
    ``recompute(index)`` (not cached), for a caller that consumes the rows as they come and
    cannot start over.
    """
    store = ChunkStore(cache_prefix, query_hash)
    meta = _plan_meta(store)
    failed = set(meta.get("failed_indices", []))
    names: list[str] | None = None
    for index in range(int(meta["total"])):
        if index in failed:
            continue
        table = store.get(index)
        if table is None and recompute is not None:
            log.info("batch %s:%s: chunk %d expired after the plan; computing it again",
                     cache_prefix, query_hash, index)
            table = recompute(index)
        if table is None:
            raise CacheExpired(f"batch {cache_prefix}:{query_hash}: chunk {index} expired")
        if names is None:
            names = table.column_names
        elif set(table.column_names) != set(names) or len(table.column_names) != len(names):
            raise ChunkColumnsMismatch(
                f"chunk {index} has columns {sorted(table.column_names)}, expected {sorted(names)}"
            )
        yield table.select(names)


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive")


def merge_chunks(
    cache_prefix: str,
    query_hash: str,
    *,
    spool: QuerySpool | None = None,
    spool_namespace: str = "batch",
    query_id: str | None = None,
    max_total_rows: int | None = None,
    max_result_mb: float | None = None,
    spool_ttl_seconds: int | None = None,
) -> MergeResult:
    """One table, or above the thresholds a Parquet file ``{spool_namespace}/{query_id}``."""
    settings = get_settings()
    row_cap = settings.reject_engine_max_total_rows if max_total_rows is None else max_total_rows
    mb_cap = settings.reject_engine_max_result_mb if max_result_mb is None else max_result_mb
    may_spill = settings.reject_engine_spill_enabled
    meta = _plan_meta(ChunkStore(cache_prefix, query_hash))
    chunks = iterate_chunks(cache_prefix, query_hash)
    held: list[pa.Table] = []
    rows = nbytes = 0
    for table in chunks:
        held.append(table)
        rows += table.num_rows
        nbytes += table.nbytes
        if may_spill and (rows > row_cap or nbytes > mb_cap * 1024 * 1024):
            return _spill(
                held, chunks, meta, spool, spool_namespace, query_id or query_hash, spool_ttl_seconds
            )
    if not held:
        return MergeResult(0, [], table=pa.table({}), meta=meta)
    merged = _concat(held)
    return MergeResult(merged.num_rows, merged.column_names, table=merged, meta=meta)


def _spill(
    held: list[pa.Table],
    rest: Iterator[pa.Table],
    meta: dict[str, Any],
    spool: QuerySpool | None,
    namespace: str,
    query_id: str,
    ttl: int | None,
) -> MergeResult:
    """Write the held chunks (with one unified schema), then every remaining chunk."""
    first = _concat(held)
    held.clear()

    def tables() -> Iterator[pa.Table]:
        yield first
        yield from rest

    target = spool or QuerySpool()
    try:
        entry = target.write_tables(namespace, query_id, tables(), ttl, first.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ChunkColumnsMismatch(f"a later chunk's column types disagree: {exc}") from None
    return MergeResult(entry.rows, first.column_names, spool=entry, meta=meta)
