"""Batch query engine: decompose a long request, cache each chunk, merge or spill.

``decompose_by_time_range`` / ``decompose_by_ids`` → ``execute_plan(chunks, query_fn, …)``
→ ``merge_chunks`` (one Arrow table, or a Parquet file in the query spool) or
``iterate_chunks``. The hash of a request is ``core.cache.keys.query_hash``.
"""

from mesdash.core.batch.engine import (
    ChunkTooLarge,
    PlanResult,
    chunk_ttl_for,
    effective_parallelism,
    execute_plan,
    read_progress,
)
from mesdash.core.batch.merge import ChunkColumnsMismatch, MergeResult, iterate_chunks, merge_chunks
from mesdash.core.batch.plan import Chunk, decompose_by_ids, decompose_by_time_range
from mesdash.core.batch.spool import QuerySpool, SpoolEntry, SpoolFull
from mesdash.core.cache.keys import query_hash

__all__ = [
    "Chunk",
    "ChunkColumnsMismatch",
    "ChunkTooLarge",
    "MergeResult",
    "PlanResult",
    "QuerySpool",
    "SpoolEntry",
    "SpoolFull",
    "chunk_ttl_for",
    "decompose_by_ids",
    "decompose_by_time_range",
    "effective_parallelism",
    "execute_plan",
    "iterate_chunks",
    "merge_chunks",
    "query_hash",
    "read_progress",
]
