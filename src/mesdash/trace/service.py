"""Inline (synchronous) traces: lineage expansion, then each domain through the fetcher."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import TooManyIds, ValidationFailed
from mesdash.core.validation import normalize_ids
from mesdash.lineage.service import resolve_cached
from mesdash.settings import get_settings
from mesdash.trace.events import EventFetcher


def expand_lineage(warehouse: Warehouse, ids: list[str], lineage: str) -> list[str]:
    """The seeds plus their ancestors (backward), descendants (forward) or both."""
    if lineage == "none":
        return ids
    found: dict[str, None] = dict.fromkeys(ids)
    if lineage in ("backward", "both"):
        for members in resolve_cached(warehouse, ids, "backward")["ancestors"].values():
            found.update(dict.fromkeys(members))
    if lineage in ("forward", "both"):
        for members in resolve_cached(warehouse, ids, "forward")["descendants"].values():
            found.update(dict.fromkeys(members))
    return list(found)


def trace_inline(
    warehouse: Warehouse, container_ids: Sequence[str], domains: Sequence[str], lineage: str = "none"
) -> dict[str, Any]:
    """``{container_ids, results: {domain: {data, count, quality}}}`` for at most
    ``TRACE_SYNC_CID_LIMIT`` ids (after lineage expansion)."""
    seeds = normalize_ids(container_ids)
    if not seeds:
        raise ValidationFailed("container_ids: give at least one non-empty container id")
    limit = get_settings().trace_sync_cid_limit
    if len(seeds) > limit:
        raise TooManyIds(f"{len(seeds)} container ids given; at most {limit} are traced inline")
    ids = expand_lineage(warehouse, seeds, lineage)
    if len(ids) > limit:
        raise TooManyIds(f"lineage expands to {len(ids)} containers; at most {limit} are traced inline")
    fetcher = EventFetcher(warehouse)
    results = {}
    for domain in dict.fromkeys(domains):
        fetched = fetcher.fetch_events(ids, domain)
        data = fetched["records_by_cid"]
        results[domain] = {
            "data": data,
            "count": sum(len(rows) for rows in data.values()),
            "quality": fetched["quality"],
        }
    return {"container_ids": ids, "seed_count": len(seeds), "results": results}
