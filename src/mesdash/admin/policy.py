"""The worker restart policy: cooldown, churn window, persisted history.

A restart is *allowed* unless the last one is younger than ``WORKER_RESTART_COOLDOWN``
(*cooldown*: 429 with the remaining time) or ``WORKER_RESTART_CHURN_THRESHOLD`` restarts
already happened within ``WORKER_RESTART_CHURN_WINDOW_SECONDS`` (*blocked*: 409, unless an
operator overrides it explicitly). The history lives in ``{run}/restart-history.json`` and
is read and extended under a file lock, so web workers, the watchdog and a reloaded server
all count the same restarts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from filelock import FileLock

from mesdash.settings import Settings

PolicyState = Literal["allowed", "cooldown", "blocked"]
HISTORY_FILE = "restart-history.json"
MAX_ENTRIES = 200


@dataclass(frozen=True)
class PolicyStatus:
    state: PolicyState
    cooldown_remaining_seconds: float
    cooldown_seconds: float
    churn_count: int
    churn_threshold: int
    churn_window_seconds: float
    churn_exceeded: bool
    last_restart_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str | None  # RESTART_COOLDOWN | RESTART_POLICY_BLOCKED when refused
    detail: str
    status: PolicyStatus
    retry_after: float | None = None
    overridden: bool = False


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class RestartPolicy:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.run_dir = settings.run_path
        self.cooldown = settings.worker_restart_cooldown
        self.window = settings.worker_restart_churn_window_seconds
        self.threshold = settings.worker_restart_churn_threshold
        self.clock = clock

    @property
    def path(self) -> Path:
        return self.run_dir / HISTORY_FILE

    # --------------------------------------------------------------- history ----------
    def history(self) -> list[dict[str, Any]]:
        """Recorded restarts, oldest first."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return []
        return [e for e in data if isinstance(e, dict) and isinstance(e.get("ts"), int | float)]

    def recent(self) -> list[dict[str, Any]]:
        """Restarts within the churn window (the bounded history the API shows)."""
        since = self.clock() - self.window
        return [e for e in self.history() if e["ts"] >= since]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=10):
            yield

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        entry = {"ts": now, "at": iso(now), **entry}
        keep_since = now - max(self.window, 86_400.0)
        entries = [e for e in self.history() if e["ts"] >= keep_since][-(MAX_ENTRIES - 1) :]
        entries.append(entry)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(entries))
        tmp.replace(self.path)
        return entry

    # ---------------------------------------------------------------- policy ----------
    def status(self) -> PolicyStatus:
        now = self.clock()
        entries = self.history()
        last = entries[-1]["ts"] if entries else None
        remaining = max(0.0, last + self.cooldown - now) if last is not None else 0.0
        churn = sum(1 for e in entries if e["ts"] >= now - self.window)
        exceeded = churn >= self.threshold
        state: PolicyState = "cooldown" if remaining > 0 else "blocked" if exceeded else "allowed"
        return PolicyStatus(
            state=state,
            cooldown_remaining_seconds=round(remaining, 3),
            cooldown_seconds=self.cooldown,
            churn_count=churn,
            churn_threshold=self.threshold,
            churn_window_seconds=self.window,
            churn_exceeded=exceeded,
            last_restart_at=iso(last) if last is not None else None,
        )

    def decide(self, *, override: bool = False) -> Decision:
        st = self.status()
        if st.state == "cooldown":
            return Decision(
                False,
                "RESTART_COOLDOWN",
                f"the last restart was under {self.cooldown:g}s ago; "
                f"retry in {st.cooldown_remaining_seconds:.0f}s",
                st,
                retry_after=st.cooldown_remaining_seconds,
            )
        if st.state == "blocked" and not override:
            return Decision(
                False,
                "RESTART_POLICY_BLOCKED",
                f"{st.churn_count} restarts within {self.window:g}s reached the churn threshold "
                f"of {self.threshold}; a manual override with acknowledgement is required",
                st,
            )
        return Decision(True, None, "restart allowed", st, overridden=st.state == "blocked")

    def try_restart(self, entry: dict[str, Any], *, override: bool = False) -> tuple[Decision, dict | None]:
        """Decide and, when allowed, record the restart — atomically across processes."""
        with self.locked():
            decision = self.decide(override=override)
            if not decision.allowed:
                return decision, None
            return decision, self._record({**entry, "override": decision.overridden})
