"""Liveness and cleanup: fail jobs whose worker died, remove results whose job expired."""

from __future__ import annotations

import logging
import shutil
import threading
import time

from mesdash.core.jobs.context import RESULT_MARKER
from mesdash.core.jobs.runner import reconcile
from mesdash.core.jobs.store import get_store
from mesdash.settings import get_settings

log = logging.getLogger(__name__)
RESULT_GRACE_SECONDS = 60.0  # a result directory younger than this is never removed


def sweep() -> list[str]:
    """One watchdog pass over the active jobs; returns the ids it declared failed."""
    store = get_store()
    failed = []
    for job_id in store.active_ids():
        record = store.get(job_id)
        if record is None:
            continue
        after = reconcile(store, record)
        if after["status"] != record["status"]:
            failed.append(job_id)
    return failed


def cleanup_results(now: float | None = None) -> list[str]:
    """Remove ``{spool}/{kind}/{job_id}`` directories whose job record is gone (its TTL
    passed); returns the removed job ids."""
    root = get_settings().spool_path
    store = get_store()
    now = time.time() if now is None else now
    removed = []
    for marker in root.glob(f"*/*/{RESULT_MARKER}"):
        folder = marker.parent
        try:
            age = now - marker.stat().st_mtime
        except FileNotFoundError:
            continue
        if age < RESULT_GRACE_SECONDS or store.get(folder.name) is not None:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    if removed:
        log.info("removed %d expired job result folder(s)", len(removed))
    return removed


def run_forever(stop: threading.Event) -> None:
    """Sweep every ``JOB_WATCHDOG_INTERVAL_SECONDS`` (and clean results every 60 passes)."""
    passes = 0
    while not stop.wait(get_settings().job_watchdog_interval_seconds):
        try:
            sweep()
            if passes % 60 == 0:
                cleanup_results()
        except Exception as exc:  # Redis away for a moment: the next pass tries again
            log.warning("job watchdog pass failed: %s", type(exc).__name__)
        passes += 1


def start_watchdog() -> threading.Event:
    """A daemon thread running ``run_forever``; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="job-watchdog", daemon=True).start()
    return stop
