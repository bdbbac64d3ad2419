"""Admission of a trace request: inline (200), job (202) or refused (413).

Above ``TRACE_EVENTS_CID_LIMIT`` ids → 413 ``TOO_MANY_IDS``; above ``TRACE_SYNC_CID_LIMIT`` →
a job; below it a job too when the cost estimate says the inline fetch would take longer than
``TRACE_SYNC_MAX_SECONDS``: id batches × domains × the recent seconds per batch of each
domain (an exponential average the trace jobs record, in Redis when there is one).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

import redis

from mesdash.core.redis_client import get_redis, key
from mesdash.core.resilience.errors import TooManyIds
from mesdash.settings import get_settings

log = logging.getLogger(__name__)
SMOOTHING = 0.3  # weight of the newest batch in the average
_local: dict[str, float] = {}
_lock = threading.Lock()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _key() -> str:
    return key("trace", "batch-seconds")


def record_batch_seconds(domain: str, seconds: float) -> None:
    """Fold one batch's duration into the domain's average."""
    with _lock:
        previous = _local.get(domain)
        _local[domain] = seconds if previous is None else SMOOTHING * seconds + (1 - SMOOTHING) * previous
        value = _local[domain]
    client = get_redis()
    if client is not None:
        try:
            client.hset(_key(), domain, f"{value:.4f}")
        except redis.RedisError as exc:
            log.debug("batch timing not shared: %s", type(exc).__name__)


def batch_seconds() -> dict[str, float]:
    """Average seconds per id batch and domain (shared ones win over this process's)."""
    with _lock:
        known = dict(_local)
    client = get_redis()
    if client is not None:
        try:
            shared = client.hgetall(_key())
            known.update({_text(k): float(v) for k, v in shared.items()})
        except redis.RedisError as exc:
            log.debug("batch timings unavailable: %s", type(exc).__name__)
    return known


def estimate_seconds(count: int, domains: Sequence[str]) -> float:
    """Expected inline seconds for ``count`` ids over ``domains`` (0 when nothing is known)."""
    settings = get_settings()
    batches = math.ceil(count / settings.trace_job_id_batch_size)
    timings = batch_seconds()
    return batches * sum(timings.get(d, 0.0) for d in domains)


def check_id_limit(count: int) -> None:
    limit = get_settings().trace_events_cid_limit
    if count > limit:
        raise TooManyIds(
            f"{count} container ids given; at most {limit} are traced",
            extra={"limit": limit, "count": count},
        )


def needs_job(count: int, domains: Sequence[str]) -> bool:
    """Whether a trace of ``count`` ids runs as a job rather than inline."""
    settings = get_settings()
    if count > settings.trace_sync_cid_limit:
        return True
    return estimate_seconds(count, domains) > settings.trace_sync_max_seconds


def reset_batch_seconds() -> None:
    with _lock:
        _local.clear()
