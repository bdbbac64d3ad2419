"""Job functions the job-runner tests submit (importable by a worker subprocess too)."""

from __future__ import annotations

import time
from typing import Any

from mesdash.core.jobs import JobContext
from mesdash.core.resilience.errors import ValidationFailed


def count_to(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Counts to ``n``, one progress step per unit, sleeping ``sleep`` s per unit; writes
    one file per finished unit into its result folder and skips those on a re-run."""
    n = int(params["n"])
    ctx.progress(total=n, completed=0, stage="counting")
    ran = []
    for i in range(n):
        done = ctx.result_dir / f"unit-{i}"
        if not done.exists():
            time.sleep(float(params.get("sleep", 0)))
            done.write_text(str(ctx.attempt))
            ran.append(i)
        ctx.progress(completed=i + 1)
    return {"sum": sum(range(n)), "ran": ran, "attempt": ctx.attempt}


def bad_input(ctx: JobContext, params: dict[str, Any]) -> None:
    raise ValidationFailed("limit must be positive")


def crash(ctx: JobContext, params: dict[str, Any]) -> None:
    raise RuntimeError("disk on fire")
