"""Trace requests: inline (synchronous) for small ones, a trace job for large ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mesdash.core.db.warehouse import Warehouse
from mesdash.core.jobs import Submitted
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.core.validation import normalize_ids
from mesdash.lineage.service import resolve_cached
from mesdash.trace.admission import check_id_limit, needs_job
from mesdash.trace.events import DOMAINS, EventFetcher


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


def canonical_domains(domains: Sequence[str]) -> list[str]:
    """Requested domains, de-duplicated, in the fixed order streams and jobs use."""
    wanted = set(domains)
    return [d for d in DOMAINS if d in wanted]


def trace_request(
    warehouse: Warehouse, container_ids: Sequence[str], domains: Sequence[str], lineage: str = "none"
) -> dict[str, Any] | Submitted:
    """Admission: 413 above ``TRACE_EVENTS_CID_LIMIT``; a trace job (``Submitted``) above
    ``TRACE_SYNC_CID_LIMIT`` ids — seeds or lineage-expanded — or when the cost estimate
    says the inline fetch would be slow; else the inline result."""
    from mesdash.trace.jobs import submit_trace

    seeds = normalize_ids(container_ids)
    if not seeds:
        raise ValidationFailed("container_ids: give at least one non-empty container id")
    check_id_limit(len(seeds))
    ordered = canonical_domains(domains)
    if needs_job(len(seeds), ordered):
        return submit_trace(seeds, ordered, lineage)
    ids = expand_lineage(warehouse, seeds, lineage)
    if needs_job(len(ids), ordered):
        return submit_trace(seeds, ordered, lineage)
    return _fetch_inline(warehouse, ids, len(seeds), ordered)


def _fetch_inline(
    warehouse: Warehouse, ids: list[str], seed_count: int, domains: Sequence[str]
) -> dict[str, Any]:
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
    return {"container_ids": ids, "seed_count": seed_count, "results": results}
