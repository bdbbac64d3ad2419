"""Helpers shared by the batch engine and spool tests (no tests here): Redis or no Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mesdash.core.cache import reset_l1, reset_l2_backoff
from mesdash.core.redis_client import reset_redis
from mesdash.settings import reset_settings


def use_backend(monkeypatch: pytest.MonkeyPatch, kind: str, redis_url: str, spool_dir: Path) -> Iterator[str]:
    """Point the settings at Redis (unique namespace) or at no Redis; yields the namespace
    and deletes its Redis keys afterwards."""
    ns = f"test-batch-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MESDASH_CACHE_NAMESPACE", ns)
    monkeypatch.setenv("MESDASH_SPOOL_DIR", str(spool_dir))
    if kind == "redis":
        monkeypatch.setenv("MESDASH_REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("MESDASH_REDIS_URL", raising=False)
    reset_settings()
    reset_redis()
    reset_l1()
    reset_l2_backoff()
    yield ns
    reset_redis()
    reset_l1()
    if kind == "redis":
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{ns}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
