"""Where a plan's chunks and progress live.

With Redis: chunk ``i`` is Arrow IPC at ``{ns}:batch:{prefix}:{hash}:chunk:{i}``, progress is
the hash ``{ns}:batch:{prefix}:{hash}:meta``, the plan lock a short Redis lease
(``{ns}:batch:{prefix}:{hash}:lock``, ``CACHE_LEASE_SECONDS``) that a thread of its holder
renews while the plan runs — so the lock of a holder that died, or failed while Redis was
down and could not delete it, runs out within that bound, also when Redis kept the key
across a restart (append-only file). Without Redis
(embedded demo): chunks live in the process's bounded L1, progress in a JSON sidecar file
under the spool directory, the lock is a file lock. Every key goes through
``redis_client.key``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import redis
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from mesdash.core.cache.codec import decode, encode
from mesdash.core.cache.l1 import get_l1
from mesdash.core.cache.l2 import L2
from mesdash.core.cache.singleflight import LeaseState, RedisLease
from mesdash.core.redis_client import get_redis, key
from mesdash.settings import get_settings

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")
LIST_FIELDS = ("failed_ranges", "failed_indices", "truncated_ranges")


def safe_name(value: str) -> str:
    """A namespace as a single, harmless path component."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value) or "_"


def _encode_meta(meta: Mapping[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if k in LIST_FIELDS else str(v) for k, v in meta.items()}


def _decode_meta(raw: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for k, v in raw.items():
        if k in LIST_FIELDS:
            meta[k] = json.loads(v)
        elif k in ("total", "completed", "failed", "pct", "rows_read"):
            meta[k] = int(float(v))
        elif k in ("has_partial_failure", "truncated"):
            meta[k] = v == "True"
        else:
            meta[k] = v
    return meta


class ChunkStore:
    """Chunk payloads, progress metadata and the plan lock of one ``(prefix, hash)``."""

    def __init__(self, prefix: str, query_hash: str) -> None:
        if not NAME_PATTERN.match(prefix) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", query_hash):
            raise ValueError("cache prefix or query hash holds characters outside [A-Za-z0-9_.-]")
        self.prefix = prefix
        self.query_hash = query_hash
        self.redis: redis.Redis | None = get_redis()
        self._meta_lock = threading.Lock()

    # ------------------------------------------------------------------ keys -----------
    def chunk_key(self, index: int) -> str:
        return key("batch", self.prefix, self.query_hash, "chunk", index)

    @property
    def meta_key(self) -> str:
        return key("batch", self.prefix, self.query_hash, "meta")

    @property
    def _local_dir(self) -> Path:
        settings = get_settings()
        return settings.spool_path / "batch" / safe_name(settings.namespace)

    @property
    def sidecar(self) -> Path:
        return self._local_dir / f"{self.prefix or '_'}-{self.query_hash}.meta.json"

    # ---------------------------------------------------------------- chunks -----------
    def has(self, index: int) -> bool:
        if self.redis is not None:
            return bool(self.redis.exists(self.chunk_key(index)))
        return self.chunk_key(index) in get_l1()

    def put(self, index: int, table: pa.Table, ttl: int) -> bool:
        """Store a chunk for ``ttl`` seconds; False when the store refused it."""
        data = encode(table)
        if self.redis is not None:
            return bool(self.redis.set(self.chunk_key(index), data, ex=max(1, int(ttl))))
        return get_l1().set(self.chunk_key(index), data, ttl)

    def get(self, index: int) -> pa.Table | None:
        if self.redis is not None:
            data = self.redis.get(self.chunk_key(index))
        else:
            data = get_l1().get(self.chunk_key(index))
        if data is None:
            return None
        table = decode(data if isinstance(data, bytes) else bytes(data, "latin-1"))
        return table if isinstance(table, pa.Table) else None

    def ttl_ms(self, index: int) -> int | None:
        """Remaining lifetime of a stored chunk in ms (Redis only; None elsewhere or absent)."""
        if self.redis is None:
            return None
        value = int(self.redis.pttl(self.chunk_key(index)))
        return value if value >= 0 else None

    # ------------------------------------------------------------------ meta -----------
    def write_meta(self, meta: Mapping[str, Any], ttl: int) -> None:
        """Replace the progress record (a Redis hash, or the JSON sidecar)."""
        ttl = max(1, int(ttl))
        with self._meta_lock:
            if self.redis is not None:
                pipe = self.redis.pipeline()
                pipe.delete(self.meta_key)
                pipe.hset(self.meta_key, mapping=_encode_meta(meta))  # type: ignore[arg-type]
                pipe.expire(self.meta_key, ttl)
                pipe.execute()
                return
            self._local_dir.mkdir(parents=True, exist_ok=True)
            body = {**meta, "expires_at": time.time() + ttl}
            tmp = self.sidecar.with_name(self.sidecar.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.sidecar)

    def read_meta(self) -> dict[str, Any] | None:
        if self.redis is not None:
            raw = self.redis.hgetall(self.meta_key)
            if not raw:
                return None
            return _decode_meta({k.decode(): v.decode() for k, v in raw.items()})  # type: ignore[union-attr]
        try:
            body = json.loads(self.sidecar.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if float(body.pop("expires_at", 0)) < time.time():
            with contextlib.suppress(FileNotFoundError):
                self.sidecar.unlink()
            return None
        return dict(body)

    # ------------------------------------------------------------------ lock -----------
    @contextlib.contextmanager
    def plan_lock(self, wait_seconds: float) -> Iterator[None]:
        """Hold the plan's lock while the plan runs, or proceed without it after
        ``wait_seconds`` (the work is idempotent; the lock only saves a duplicate run).

        With Redis the lock is a ``RedisLease`` of ``CACHE_LEASE_SECONDS``, renewed by its
        holder's thread and deleted (only while it still holds our token) at the end; a
        waiter polls for it, so it goes on as soon as the holder finished or its lease ran
        out — never waiting on a dead holder longer than the lease. Without Redis reachable
        the plan runs unlocked (its chunk reads and writes then answer for Redis)."""
        if self.redis is not None:
            settings = get_settings()
            name = key("batch", self.prefix, self.query_hash, "lock")
            lease = RedisLease(L2(), name, settings.cache_lease_seconds)
            deadline = time.monotonic() + wait_seconds
            interval = settings.cache_follower_poll_seconds
            state = lease.acquire()
            while state is LeaseState.HELD and (remaining := deadline - time.monotonic()) > 0:
                time.sleep(min(interval, remaining))
                interval = min(interval * 1.5, 0.5)
                state = lease.acquire()
            if state is LeaseState.HELD:
                log.warning(
                    "batch %s:%s: lock held for %.0fs, running without it",
                    *(self.prefix, self.query_hash, wait_seconds),
                )
            try:
                yield
            finally:
                if state is LeaseState.ACQUIRED:
                    lease.release()
            return
        self._local_dir.mkdir(parents=True, exist_ok=True)
        flock = FileLock(str(self.sidecar.with_suffix(".lock")))
        try:
            flock.acquire(timeout=wait_seconds)
        except FileLockTimeout:
            log.warning("batch %s:%s: lock busy, running without it", self.prefix, self.query_hash)
            yield
            return
        try:
            yield
        finally:
            flock.release()
