"""Trace jobs: lineage, then every domain batch by batch into Parquet parts (resumable)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from mesdash.core.db.warehouse import get_warehouse
from mesdash.core.jobs import JobContext, JobKind, Submitted, submit
from mesdash.core.resilience.errors import ERROR_TABLE, MesdashError
from mesdash.core.validation import normalize_ids
from mesdash.settings import get_settings
from mesdash.trace.admission import record_batch_seconds
from mesdash.trace.events import EventFetcher, write_rows_parquet
from mesdash.trace.parts import Manifest, batch_bounds, part_name
from mesdash.trace.service import expand_lineage

log = logging.getLogger(__name__)

TRACE = JobKind(
    name="trace",
    queue="trace-events",
    func="mesdash.trace.jobs:run_trace_job",
    status_url="/api/trace/job/{job_id}",
    result_url="/api/trace/job/{job_id}/result",
    stream_url="/api/trace/job/{job_id}/stream",
)


def submit_trace(container_ids: list[str], domains: list[str], lineage: str) -> Submitted:
    """Queue (or join) the trace of these normalized ids; domains in canonical order."""
    settings = get_settings()
    params = {"container_ids": container_ids, "domains": domains, "lineage": lineage}
    return submit(
        TRACE, params, timeout=settings.trace_job_timeout_seconds, ttl=settings.trace_job_ttl_seconds
    )


def _prepare(ctx: JobContext, params: dict[str, Any]) -> tuple[Manifest, list[str]]:
    """The manifest and ids of an earlier attempt, or lineage expansion and a new manifest."""
    folder = ctx.result_dir
    manifest = Manifest.load(folder)
    ids = Manifest.load_ids(folder)
    if manifest is not None and ids is not None:
        log.info("trace job %s resumes (attempt %d)", ctx.job_id, ctx.attempt)
        return manifest, ids
    ctx.progress(stage="lineage" if params["lineage"] != "none" else "planning")
    seeds = normalize_ids(params["container_ids"])
    ids = expand_lineage(get_warehouse(), seeds, params["lineage"])
    Manifest.save_ids(folder, ids)
    settings = get_settings()
    first, size = settings.trace_job_first_batch_size, settings.trace_job_id_batch_size
    manifest = Manifest(
        folder=folder,
        domains=list(params["domains"]),
        container_count=len(ids),
        batch_count=len(batch_bounds(len(ids), first, size)),
        as_of=datetime.now().isoformat(timespec="seconds"),
        first_batch_size=first,
        id_batch_size=size,
    )
    manifest.save()
    return manifest, ids


def run_trace_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The job function (``TRACE.func``): one Parquet part per (domain, id batch)."""
    manifest, ids = _prepare(ctx, params)
    fetcher = EventFetcher(get_warehouse())
    id_batches = manifest.id_batches(ids)
    as_of = datetime.fromisoformat(manifest.as_of)
    completed, failed = manifest.counts()
    ctx.progress(total=len(id_batches) * len(manifest.domains), completed=completed, failed=failed)
    for domain in manifest.domains:
        for index in range(len(manifest.done(domain)), len(id_batches)):
            ctx.progress(stage=f"events:{domain}")  # a checkpoint: stops here once cancelled
            batch = id_batches[index]
            started = time.monotonic()
            try:
                path = manifest.folder / part_name(domain, index)
                rows = write_rows_parquet(fetcher.batch_rows(domain, batch, as_of), path)
                manifest.add(domain, rows)
                completed += 1
            except MesdashError as exc:
                if ERROR_TABLE[exc.code].retry:
                    raise  # the warehouse is away or busy: the job fails; a retry resumes here
                failure = {"domain": domain, "first_id": batch[0], "last_id": batch[-1],
                           "count": len(batch), "code": exc.code}
                manifest.add(domain, 0, failed=failure)
                failed += 1
            if len(batch) == manifest.id_batch_size:  # the admission estimate is per full batch
                record_batch_seconds(domain, time.monotonic() - started)
            manifest.save()
            ctx.progress(completed=completed, failed=failed)
    manifest.quality = manifest.summary_quality()
    manifest.save()
    return {
        "container_count": manifest.container_count,
        "rows": {d: manifest.rows(d) for d in manifest.domains},
        "quality": manifest.quality,
    }
