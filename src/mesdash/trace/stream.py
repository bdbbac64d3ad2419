"""A trace job's results as NDJSON (following a running job) and as pages.

Stream lines, each a JSON object with a ``type``: ``meta``; per domain ``domain_start``,
``records`` (≤ ``TRACE_STREAM_BATCH_SIZE`` rows, with a ``batch`` index counted across the
whole stream), ``domain_end``; then ``quality`` and ``complete`` — or ``error`` when the job
failed or was cancelled (with ``resume_from_batch``), or ``CACHE_EXPIRED`` when the job's
results expired while the stream read them (the status line was sent: the stream ends with
a line, never a cut). ``from_batch=N`` leaves out the ``records`` lines before batch N (the
structure lines are always sent). The web process holds one part's chunk at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mesdash.core.jobs import CANCELLED, FAILED, FINISHED, get_record, result_dir
from mesdash.core.resilience.errors import JobNotFinished, NotFound, ValidationFailed
from mesdash.core.resilience.problem import jsonable_bytes
from mesdash.settings import get_settings
from mesdash.trace.parts import Manifest, chunks_in, read_rows, stream_chunks

POLL_SECONDS = 0.2


def _line(payload: dict[str, Any]) -> bytes:
    return jsonable_bytes(payload) + b"\n"


class _Follower:
    """Re-reads the manifest (and the job's status) while the job runs."""

    def __init__(self, job_id: str, folder: Path, deadline: float) -> None:
        self.job_id = job_id
        self.folder = folder
        self.deadline = deadline
        self.manifest: Manifest | None = None
        self.record: dict[str, Any] = {}
        self.expired = False  # the results (folder or record) went while the stream read them

    def stopped(self) -> bool:
        """The job ended badly (failed / cancelled), or the stream waited too long."""
        return self.record.get("status") in (FAILED, CANCELLED) or time.monotonic() > self.deadline

    def wait_for(self, ready: Callable[[Manifest], bool]) -> Manifest | None:
        """The manifest once ``ready`` holds, or None when the job stopped first or its
        results expired (``expired``). Parts are only ever added, so a manifest read once
        that is ready stays so: a finished job's stream reads it once."""
        while True:
            if self.manifest is not None and ready(self.manifest):
                return self.manifest
            seen = self.manifest is not None
            self.manifest = Manifest.load(self.folder)
            if self.manifest is not None and ready(self.manifest):
                return self.manifest
            if seen and self.manifest is None:  # the cleanup removed the expired results
                self.expired = True
                return None
            try:
                self.record = get_record(self.job_id)
            except NotFound:
                self.expired = True
                return None
            if self.record["status"] == FINISHED:
                self.manifest = Manifest.load(self.folder)
                return self.manifest if self.manifest is not None and ready(self.manifest) else None
            if self.stopped():
                return None
            time.sleep(POLL_SECONDS)


def _error_line(follower: _Follower, next_batch: int) -> bytes:
    record = follower.record
    if follower.expired:
        error = {"code": "CACHE_EXPIRED", "detail": "the job's results expired while the stream read them"}
    elif record.get("status") == CANCELLED:
        error = {"code": "CANCELLED", "detail": "the job was cancelled"}
    elif record.get("status") == FAILED:
        error = record.get("error") or {"code": "INTERNAL_ERROR", "detail": "the job failed"}
    else:
        error = {"code": "QUERY_TIMEOUT", "detail": "the job did not finish within its timeout"}
    return _line({"type": "error", "job_id": follower.job_id, **error, "resume_from_batch": next_batch})


def stream_job(job_id: str, from_batch: int = 0) -> Iterator[bytes]:
    """NDJSON lines of a trace job, following it while it runs."""
    if from_batch < 0:
        raise ValidationFailed("from_batch: must be ≥ 0")
    record = get_record(job_id)  # 404 before the first byte
    settings = get_settings()
    size = settings.trace_stream_batch_size
    deadline = time.monotonic() + float(record.get("timeout") or settings.trace_job_timeout_seconds)
    return _lines(_Follower(job_id, result_dir(record["kind"], job_id), deadline), size, from_batch)


def _part_ready(domain: str, index: int) -> Callable[[Manifest], bool]:
    return lambda m: len(m.done(domain)) > index or m.domain_finished(domain)


def _lines(follower: _Follower, size: int, from_batch: int) -> Iterator[bytes]:
    manifest = follower.wait_for(lambda m: True)
    if manifest is None:
        yield _error_line(follower, from_batch)
        return
    yield _line({
        "type": "meta", "job_id": follower.job_id, "domains": manifest.domains,
        "container_count": manifest.container_count, "batch_size": size,
        "from_batch": from_batch, "as_of": manifest.as_of,
    })
    batch = 0
    for domain in manifest.domains:
        yield _line({"type": "domain_start", "domain": domain})
        part_index = 0
        rows = 0
        while True:
            current = follower.wait_for(_part_ready(domain, part_index))
            if current is None:
                yield _error_line(follower, max(batch, from_batch))
                return
            if len(current.done(domain)) <= part_index:
                break  # every batch of the domain is in
            part = current.done(domain)[part_index]
            part_index += 1
            rows += int(part["rows"])
            count = chunks_in(int(part["rows"]), size)
            if not count or batch + count <= from_batch:  # empty, or sent before
                batch += count
                continue
            try:
                chunks = stream_chunks(follower.folder / part["file"], size)  # opened here: read to its end
            except FileNotFoundError:
                follower.expired = True
                yield _error_line(follower, max(batch, from_batch))
                return
            for chunk in chunks:
                if batch >= from_batch:
                    yield _line({"type": "records", "domain": domain, "batch": batch,
                                 "rows": chunk.to_pylist()})
                batch += 1
        yield _line({"type": "domain_end", "domain": domain, "rows": rows})
    final = follower.wait_for(lambda m: m.quality is not None)
    if final is None or final.quality is None:
        yield _error_line(follower, batch)
        return
    yield _line({"type": "quality", **final.quality})
    yield _line({"type": "complete", "job_id": follower.job_id, "batches": batch,
                 "rows": final.quality["observed_rows"]})


def result_page(job_id: str, domain: str | None, offset: int, limit: int) -> dict[str, Any]:
    """Rows ``offset…offset+limit`` of one domain of a finished trace job (409 before)."""
    record = get_record(job_id)
    if record["status"] != FINISHED:
        raise JobNotFinished(f"job {job_id} is {record['status']}", extra={"job_status": record["status"]})
    manifest = Manifest.load(result_dir(record["kind"], job_id))
    if manifest is None:
        raise NotFound(f"the results of job {job_id} are gone")
    chosen = domain or manifest.domains[0]
    if chosen not in manifest.domains:
        raise ValidationFailed(f"domain: {chosen!r} is not one of this job's {manifest.domains}")
    rows = read_rows(manifest.folder, manifest.done(chosen), offset, limit)
    return {
        "job_id": job_id, "domain": chosen, "offset": offset, "limit": limit,
        "total": manifest.rows(chosen), "data": rows, "quality": manifest.quality,
    }
