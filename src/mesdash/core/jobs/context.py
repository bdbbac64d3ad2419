"""The job side: ``JobContext`` reports progress, keeps the heartbeat, notices cancellation."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from mesdash.core.jobs.model import STARTED, progress_dict
from mesdash.core.jobs.store import JobStore
from mesdash.settings import get_settings

log = logging.getLogger(__name__)


RESULT_MARKER = ".job"


class JobCancelled(Exception):
    """Raised inside a job at its next checkpoint once it was cancelled (or declared dead)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def result_dir(kind: str, job_id: str) -> Path:
    """Where a job's files live: ``{spool}/{kind}/{job_id}`` (shared by every host)."""
    return get_settings().spool_path / kind / job_id


class JobContext:
    """Handed to a job function as its first argument.

    ``progress()`` records ``{total, completed, failed, pct, stage}`` and is a checkpoint:
    it raises ``JobCancelled`` when the job was cancelled or the watchdog gave up on it.
    A daemon thread refreshes the heartbeat every ``JOB_HEARTBEAT_SECONDS`` meanwhile.
    """

    def __init__(
        self,
        store: JobStore,
        record: dict[str, Any],
        parent_pid: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.parent_pid = parent_pid  # an RQ work horse exits when its worker died
        self.job_id: str = record["id"]
        self.kind: str = record["kind"]
        self.attempt: int = int(record.get("attempt", 1))
        self.params: dict[str, Any] = params or {}
        self._progress = dict(record.get("progress") or progress_dict())
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def result_dir(self) -> Path:
        """``{spool}/{kind}/{job_id}``, created on first use with a ``.job`` marker so the
        TTL cleanup (``watchdog.cleanup_results``) removes it once the job record expired."""
        path = result_dir(self.kind, self.job_id)
        marker = path / RESULT_MARKER
        if not marker.exists():
            path.mkdir(parents=True, exist_ok=True)
            marker.write_text(self.job_id)
        return path

    # ------------------------------------------------------------------ progress ----------
    def progress(
        self,
        *,
        total: int | None = None,
        completed: int | None = None,
        failed: int | None = None,
        stage: str | None = None,
    ) -> dict[str, Any]:
        """Update the given progress fields (the rest stay) and check for cancellation."""
        current = self._progress
        self._progress = progress_dict(
            total=current["total"] if total is None else total,
            completed=current["completed"] if completed is None else completed,
            failed=current["failed"] if failed is None else failed,
            stage=current["stage"] if stage is None else stage,
        )
        ok = self.store.update(
            self.job_id, {"progress": self._progress, "heartbeat_at": time.time()}, when=(STARTED,)
        )
        if not ok:
            self._lost.set()
        self.check()
        return self._progress

    @property
    def current_progress(self) -> dict[str, Any]:
        return dict(self._progress)

    def check(self) -> None:
        """Raise ``JobCancelled`` if the job is no longer ours to run."""
        if self._lost.is_set():
            raise JobCancelled(f"job {self.job_id} is no longer running (cancelled or declared dead)")

    @property
    def cancelled(self) -> bool:
        return self._lost.is_set()

    # ----------------------------------------------------------------- heartbeat ----------
    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"job-heartbeat-{self.job_id}", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = get_settings().job_heartbeat_seconds
        while not self._stop.wait(interval):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                # RQ's work horse survives a SIGKILL of its worker (own process group): a
                # horse without its worker stops beating and exits, like the worker did.
                log.error("job %s: worker %d died; work horse exits", self.job_id, self.parent_pid)
                self._lost.set()
                os._exit(70)
            try:
                if not self.store.update(self.job_id, {"heartbeat_at": time.time()}, when=(STARTED,)):
                    self._lost.set()
                    return
            except Exception as exc:  # a Redis blip: the next beat tries again
                log.warning("job heartbeat failed: job=%s error=%s", self.job_id, type(exc).__name__)
