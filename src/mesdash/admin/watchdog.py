"""``mesdash watchdog``: executes restart requests and automatic recovery under the policy.

Each pass:
1. Accepted restart requests (files from the admin API) → one SIGHUP to the gunicorn master
   (a graceful reload on the same port: new workers start, old ones finish their requests),
   then the files are removed and each request is audited as ``executed``. The API already
   applied and recorded the policy for them.
2. Otherwise, automatic triggers — system memory at or above ``WATCHDOG_MEMORY_PERCENT``, a
   worker above ``WATCHDOG_WORKER_MAX_RSS_MB``, a worker whose heartbeat is older than
   ``WATCHDOG_STUCK_SECONDS`` — ask the same policy (cooldown, churn; never an override);
   allowed → SIGHUP and recorded, refused → audited once per distinct refusal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mesdash.admin.audit import AuditLog
from mesdash.admin.policy import RestartPolicy
from mesdash.admin.workers import master_pid, pending_requests, workers
from mesdash.settings import Settings

log = logging.getLogger(__name__)
ACTOR = "watchdog"


@dataclass
class Watchdog:
    settings: Settings
    send_signal: Callable[[int, int], None] = os.kill
    memory_percent: Callable[[], float] = field(default=lambda: psutil.virtual_memory().percent)
    policy: RestartPolicy | None = None
    audit: AuditLog | None = None
    _last_refusal: str | None = None

    def __post_init__(self) -> None:
        self.policy = self.policy or RestartPolicy(self.settings)
        self.audit = self.audit or AuditLog(self.settings.audit_log_path)

    @property
    def run_dir(self) -> Path:
        return self.settings.run_path

    # ------------------------------------------------------------------ triggers ------
    def triggers(self, master: int) -> list[str]:
        s = self.settings
        found = []
        percent = self.memory_percent()
        if percent >= s.watchdog_memory_percent:
            found.append(
                f"memory pressure: system memory at {percent:.0f}% (limit {s.watchdog_memory_percent:g}%)"
            )
        for w in workers(self.run_dir, master):
            if s.watchdog_worker_max_rss_mb and w.rss_mb >= s.watchdog_worker_max_rss_mb:
                found.append(
                    f"worker {w.pid} uses {w.rss_mb:.0f} MB (limit {s.watchdog_worker_max_rss_mb} MB)"
                )
            if w.stuck(s.watchdog_stuck_seconds):
                found.append(f"worker {w.pid} stuck: heartbeat {w.heartbeat_age_seconds:.1f}s old")
        return found

    # ---------------------------------------------------------------------- pass ------
    def _reload(self, master: int) -> None:
        log.warning("watchdog: sending SIGHUP to gunicorn master %s (graceful reload)", master)
        self.send_signal(master, signal.SIGHUP)

    def run_once(self) -> list[dict[str, Any]]:
        """One pass; returns the audit entries it wrote."""
        assert self.policy is not None and self.audit is not None
        master = master_pid(self.run_dir)
        pending = pending_requests(self.run_dir)
        if pending:
            return self._execute_requests(master, pending)
        if master is None:
            return []
        found = self.triggers(master)
        if not found:
            self._last_refusal = None
            return []
        reason = "; ".join(found)
        decision, _ = self.policy.try_restart({"source": "watchdog", "actor": ACTOR, "reason": reason})
        if not decision.allowed:
            key = f"{decision.code}|{reason}"
            if key == self._last_refusal:
                return []
            self._last_refusal = key
            entry = self.audit.write(
                "auto_restart",
                (decision.code or "refused").lower(),
                actor=ACTOR,
                reason=reason,
                policy=decision.status.as_dict(),
            )
            log.warning("watchdog: restart wanted (%s) but %s", reason, decision.detail)
            return [entry]
        self._last_refusal = None
        self._reload(master)
        return [self.audit.write("auto_restart", "executed", actor=ACTOR, reason=reason, master_pid=master)]

    def _execute_requests(
        self, master: int | None, pending: list[tuple[Any, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        assert self.audit is not None
        decision = "executed"
        if master is None:
            decision = "dropped"  # gunicorn went away after the request was accepted
        else:
            self._reload(master)
        entries = []
        for path, request in pending:
            with contextlib.suppress(OSError):
                path.unlink()
            entries.append(
                self.audit.write(
                    "worker_restart",
                    decision,
                    actor=ACTOR,
                    reason=str(request.get("reason", "")),
                    request_id=request.get("request_id"),
                    requested_by=request.get("actor"),
                    override=bool(request.get("override")),
                    master_pid=master,
                )
            )
        return entries

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("watchdog: watching %s every %ss", self.run_dir, self.settings.watchdog_interval_seconds)
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("watchdog: pass failed")
            stop.wait(self.settings.watchdog_interval_seconds)
