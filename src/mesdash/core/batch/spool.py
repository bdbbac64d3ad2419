"""Query spool: large report datasets as Parquet files with a metadata pointer.

Files are ``{root}/{namespace}/{query_id}.parquet``; ``root`` defaults to
``{SPOOL}/query/{cache namespace}`` so two warehouses sharing a spool directory never see
(or clean up) each other's files. The pointer — row count, columns hash, size, created and
expires — is a Redis hash (``key("spool", namespace, query_id)``) or, without Redis, a JSON
sidecar next to the file. Writes go to a ``.tmp`` file renamed into place. Ids match a
strict pattern (no path traversal). An expired, missing or mismatched entry is dropped and
``lookup`` answers None: the caller re-queries. ``cleanup`` removes expired entries,
orphaned files and stale ``.tmp`` files under a lock (Redis lock, or a file lock).

What changes an entry is serialized per namespace by a file lock (``.entries.lock`` in the
namespace's folder): a writer's rename and pointer update, and every removal — a ``lookup``
that found the entry inconsistent, ``drop``, ``cleanup`` — which checks the entry again
under the lock. Without it a reader that looked between a rewrite's rename and its pointer
update saw a size mismatch and deleted the new file, and cleanup could take a file just
renamed into place for an orphan: the dataset just built was gone (410) at once.
The total size is capped by ``QUERY_SPOOL_MAX_BYTES``: a warning above
``QUERY_SPOOL_WARN_RATIO`` of it, ``SpoolFull`` past it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import redis
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from mesdash.core.batch.store import safe_name
from mesdash.core.redis_client import get_redis, key
from mesdash.core.resilience.errors import MesdashError
from mesdash.settings import get_settings

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
SUFFIX = ".parquet"
META_SUFFIX = ".meta.json"
ENTRY_LOCK = ".entries.lock"


class SpoolFull(MesdashError):
    """Writing the dataset would take the spool past ``QUERY_SPOOL_MAX_BYTES``."""

    code = "INTERNAL_ERROR"


def columns_hash(schema: pa.Schema) -> str:
    """SHA-256[:16] of the column names and types, in order."""
    text = "|".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_id(value: str, what: str = "query id") -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValueError(f"invalid spool {what}: {value!r}")
    return value


@dataclass(frozen=True)
class SpoolEntry:
    namespace: str
    query_id: str
    path: str
    rows: int
    columns_hash: str
    size: int
    created_at: float
    expires_at: float

    def to_fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_fields(cls, raw: dict[str, Any]) -> SpoolEntry:
        return cls(
            namespace=str(raw["namespace"]),
            query_id=str(raw["query_id"]),
            path=str(raw["path"]),
            rows=int(raw["rows"]),
            columns_hash=str(raw["columns_hash"]),
            size=int(raw["size"]),
            created_at=float(raw["created_at"]),
            expires_at=float(raw["expires_at"]),
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


@dataclass
class CleanupReport:
    expired: int = 0
    orphans: int = 0
    temps: int = 0
    ran: bool = True


class QuerySpool:
    def __init__(
        self,
        root: Path | None = None,
        *,
        max_bytes: int | None = None,
        warn_ratio: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = get_settings()
        self.root = root or settings.spool_path / "query" / safe_name(settings.namespace)
        self.max_bytes = settings.query_spool_max_bytes if max_bytes is None else max_bytes
        self.warn_ratio = settings.query_spool_warn_ratio if warn_ratio is None else warn_ratio
        self.clock = clock
        self.redis: redis.Redis | None = get_redis()

    # ---------------------------------------------------------------- paths ------------
    def path_for(self, namespace: str, query_id: str) -> Path:
        check_id(namespace, "namespace")
        check_id(query_id)
        return self.root / namespace / f"{query_id}{SUFFIX}"

    def _sidecar(self, path: Path) -> Path:
        return path.with_name(path.name[: -len(SUFFIX)] + META_SUFFIX)

    def _meta_key(self, namespace: str, query_id: str) -> str:
        return key("spool", namespace, query_id)

    @contextlib.contextmanager
    def _entry_lock(self, namespace: str) -> Iterator[None]:
        """Held while an entry of ``namespace`` is replaced or removed (never nested)."""
        folder = self.root / namespace
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ENTRY_LOCK)):
            yield

    # ------------------------------------------------------------ metadata -------------
    def _save_meta(self, entry: SpoolEntry) -> None:
        if self.redis is not None:
            name = self._meta_key(entry.namespace, entry.query_id)
            pipe = self.redis.pipeline()
            pipe.hset(name, mapping=entry.to_fields())  # type: ignore[arg-type]
            pipe.expireat(name, int(entry.expires_at) + 1)
            pipe.execute()
            return
        sidecar = self._sidecar(Path(entry.path))
        tmp = sidecar.with_name(f"{sidecar.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(asdict(entry)))
        os.replace(tmp, sidecar)

    def _load_meta(self, namespace: str, query_id: str) -> SpoolEntry | None:
        try:
            if self.redis is not None:
                raw = self.redis.hgetall(self._meta_key(namespace, query_id))
                if not raw:
                    return None
                fields = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
                return SpoolEntry.from_fields(fields)
            sidecar = self._sidecar(self.path_for(namespace, query_id))
            return SpoolEntry.from_fields(json.loads(sidecar.read_text()))
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def drop(self, namespace: str, query_id: str) -> None:
        """Remove a dataset's file and pointer (missing parts are fine)."""
        path = self.path_for(namespace, query_id)
        with self._entry_lock(namespace):
            self._drop(namespace, query_id, path)

    def _drop(self, namespace: str, query_id: str, path: Path) -> None:
        if self.redis is not None:
            self.redis.delete(self._meta_key(namespace, query_id))
        for p in (path, self._sidecar(path)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    # --------------------------------------------------------------- write -------------
    def usage_bytes(self) -> int:
        if not self.root.exists():
            return 0
        total = 0
        for p in self.root.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                if p.is_file():
                    total += p.stat().st_size
        return total

    def _check_cap(self, used: int, written: int) -> None:
        if used + written > self.max_bytes:
            raise SpoolFull(f"query spool over its cap of {self.max_bytes} bytes")

    def write_tables(
        self,
        namespace: str,
        query_id: str,
        tables: Iterable[pa.Table],
        ttl_seconds: int | None = None,
        schema: pa.Schema | None = None,
    ) -> SpoolEntry:
        """Write ``tables`` one by one into a Parquet file (``.tmp`` then rename)."""
        path = self.path_for(namespace, query_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        used = self.usage_bytes()
        self._check_cap(used, 0)
        if used > self.warn_ratio * self.max_bytes:
            log.warning("query spool at %d of %d bytes", used, self.max_bytes)
        ttl = get_settings().query_spool_ttl_seconds if ttl_seconds is None else ttl_seconds
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        rows = 0
        writer: pq.ParquetWriter | None = None
        try:
            for table in tables:
                if writer is None:
                    schema = schema or table.schema
                    writer = pq.ParquetWriter(str(tmp), schema)
                writer.write_table(table.select(schema.names).cast(schema))  # type: ignore[union-attr]
                rows += table.num_rows
                self._check_cap(used, tmp.stat().st_size)
            if writer is None:
                if schema is None:
                    raise ValueError("no tables and no schema: nothing to spool")
                writer = pq.ParquetWriter(str(tmp), schema)
            writer.close()
            writer = None
            size = tmp.stat().st_size
            self._check_cap(used, size)
            assert schema is not None
            now = self.clock()
            entry = SpoolEntry(
                namespace, query_id, str(path), rows, columns_hash(schema), size, now, now + ttl
            )
            with self._entry_lock(namespace):  # no reader or cleanup sees the file without its pointer
                os.replace(tmp, path)
                self._save_meta(entry)
        except BaseException:
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        if used + size > self.warn_ratio * self.max_bytes:
            log.warning("query spool at %d of %d bytes after %s", used + size, self.max_bytes, query_id)
        return entry

    def write_table(
        self, namespace: str, query_id: str, table: pa.Table, ttl_seconds: int | None = None
    ) -> SpoolEntry:
        return self.write_tables(namespace, query_id, [table], ttl_seconds, table.schema)

    # ---------------------------------------------------------------- read -------------
    def lookup(
        self, namespace: str, query_id: str, expected_columns_hash: str | None = None
    ) -> SpoolEntry | None:
        """The entry when its pointer, file, size and columns agree and it has not expired;
        otherwise the leftovers are dropped and None says: re-query."""
        path = self.path_for(namespace, query_id)
        entry, reason = self._check(namespace, query_id, path, expected_columns_hash)
        if reason is None:
            return entry
        with self._entry_lock(namespace):
            # again, under the lock: a writer may have been between its rename and its pointer
            entry, reason = self._check(namespace, query_id, path, expected_columns_hash)
            if reason is None:
                return entry
            if entry is not None or path.exists():
                log.info("query spool %s/%s dropped: %s", namespace, query_id, reason)
                self._drop(namespace, query_id, path)
        return None

    def _check(
        self, namespace: str, query_id: str, path: Path, expected_columns_hash: str | None
    ) -> tuple[SpoolEntry | None, str | None]:
        """The entry and None, or what is wrong with it."""
        entry = self._load_meta(namespace, query_id)
        reason = None
        if entry is None:
            reason = "no pointer"
        elif entry.expires_at <= self.clock():
            reason = "expired"
        elif (entry.namespace, entry.query_id) != (namespace, query_id) or not path.exists():
            reason = "file missing"
        elif _size(path) != entry.size:
            reason = "size mismatch"
        else:
            try:
                file_hash = columns_hash(pq.read_schema(path))
            except (OSError, pa.ArrowException):
                file_hash = ""
            if file_hash != entry.columns_hash or expected_columns_hash not in (None, file_hash):
                reason = "columns mismatch"
        return entry, reason

    def read(self, namespace: str, query_id: str) -> pa.Table | None:
        entry = self.lookup(namespace, query_id)
        return None if entry is None else pq.read_table(self.path_for(namespace, query_id))

    def iter_batches(
        self, namespace: str, query_id: str, batch_size: int = 65_536
    ) -> Iterator[pa.RecordBatch] | None:
        entry = self.lookup(namespace, query_id)
        if entry is None:
            return None
        return pq.ParquetFile(self.path_for(namespace, query_id)).iter_batches(batch_size=batch_size)

    # ------------------------------------------------------------- cleanup -------------
    @contextlib.contextmanager
    def _cleanup_lock(self) -> Iterator[bool]:
        if self.redis is not None:
            lock = self.redis.lock(key("spool", "cleanup-lock"), timeout=300, blocking_timeout=0)
            got = bool(lock.acquire(blocking=False))
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(redis.RedisError):
                        lock.release()
            return
        self.root.mkdir(parents=True, exist_ok=True)
        flock = FileLock(str(self.root / ".cleanup.lock"))
        try:
            flock.acquire(timeout=0)
        except FileLockTimeout:
            yield False
            return
        try:
            yield True
        finally:
            flock.release()

    def cleanup(self) -> CleanupReport:
        """Remove expired datasets, files without a pointer, and stale ``.tmp`` files."""
        report = CleanupReport()
        with self._cleanup_lock() as got:
            if not got:
                report.ran = False
                return report
            if not self.root.exists():
                return report
            grace = get_settings().query_spool_tmp_grace_seconds
            now = self.clock()
            for ns_dir in (d for d in self.root.iterdir() if d.is_dir()):
                self._clean_namespace(ns_dir, now, grace, report)
        return report

    def _clean_namespace(self, ns_dir: Path, now: float, grace: float, report: CleanupReport) -> None:
        namespace = ns_dir.name
        for path in list(ns_dir.iterdir()):
            name = path.name
            with contextlib.suppress(FileNotFoundError):
                if name.endswith(".tmp"):
                    if now - path.stat().st_mtime > grace:
                        path.unlink()
                        report.temps += 1
                    continue
                if name.endswith(SUFFIX) and ID_PATTERN.match(name[: -len(SUFFIX)]):
                    query_id = name[: -len(SUFFIX)]
                    if not ID_PATTERN.match(namespace):  # no writer can use this folder
                        path.unlink()
                        report.orphans += 1
                        continue
                    entry = self._load_meta(namespace, query_id)
                    if entry is not None and entry.expires_at > now:
                        continue
                    with self._entry_lock(namespace):
                        entry = self._load_meta(namespace, query_id)  # a writer may just have renewed it
                        if entry is None:
                            path.unlink()
                            report.orphans += 1
                        elif entry.expires_at <= now:
                            self._drop(namespace, query_id, path)
                            report.expired += 1
                elif name.endswith(META_SUFFIX):
                    with self._entry_lock(namespace):
                        if not path.with_name(name[: -len(META_SUFFIX)] + SUFFIX).exists():
                            path.unlink()
                            report.orphans += 1

    def start_cleanup_loop(self, stop: threading.Event, interval: float | None = None) -> threading.Thread:
        """A daemon thread running ``cleanup`` every ``interval`` seconds until ``stop`` is set."""
        period = get_settings().query_spool_cleanup_interval_seconds if interval is None else interval

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.cleanup()
                except Exception:  # a failed pass must not end the loop
                    log.exception("query spool cleanup failed")
                stop.wait(period)

        thread = threading.Thread(target=loop, name="spool-cleanup", daemon=True)
        thread.start()
        return thread
