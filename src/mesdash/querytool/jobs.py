"""Submitting the query tool's jobs so that a finished job always has its result at hand.

A job record can outlive the dataset it built (an in-process L1 is gone after a restart;
Redis may evict or expire the dataset first). ``submit_keeping_result`` therefore runs a
finished job again when its dataset is gone: under a new deterministic id, derived from the
stale job's end time, so identical concurrent requests still share one job.
"""

from __future__ import annotations

from typing import Any

from mesdash.core.batch.dataset import dataset_info
from mesdash.core.jobs import FINISHED, JobKind, Submitted, submit

RERUN_KEY = "rerun_after"  # not a request parameter: job functions drop it
MAX_RESUBMITS = 3


def request_params(params: dict[str, Any]) -> dict[str, Any]:
    """A job's parameters without the re-run marker."""
    return {k: v for k, v in params.items() if k != RERUN_KEY}


def submit_keeping_result(kind: JobKind, params: dict[str, Any], prefix: str, query_id: str) -> Submitted:
    submitted = submit(kind, params)
    for _ in range(MAX_RESUBMITS):
        if submitted.record.get("status") != FINISHED or dataset_info(prefix, query_id) is not None:
            break
        submitted = submit(kind, {**params, RERUN_KEY: submitted.record.get("ended_at")})
    return submitted
