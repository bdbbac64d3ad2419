"""Report datasets: the result of one primary query, kept under ``(prefix, query_id)`` and
read back by every view of the report with DuckDB — never the warehouse again.

``build_dataset`` runs a plan through the batch engine (``execute_plan``), merges its chunks
(``merge_chunks``) and keeps the result: Arrow IPC in Redis (the bounded L1 without Redis),
or a Parquet file in the query spool when the merge spilled or the cache refused the table.
``store_dataset`` keeps a table computed some other way. ``open_dataset`` yields a DuckDB
connection where the dataset is the table ``dataset``; ``query_dataset`` runs one SQL text
(``:name`` binds) over it. A dataset whose info, Arrow copy or spool file is gone is
``CacheExpired`` (410) to a view: the caller runs the primary query again. The primary query
itself never is: ``build_dataset`` runs the plan again when a cached chunk expired between
the plan and the merge, and ``usable_dataset`` (not ``dataset_info``) is what a caller that
would reuse a kept dataset asks — None when any piece of it is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset

from mesdash.core.batch.engine import QueryFn, execute_plan
from mesdash.core.batch.merge import merge_chunks
from mesdash.core.batch.plan import Chunk, plan_params
from mesdash.core.batch.spool import QuerySpool, check_id
from mesdash.core.cache.codec import decode, encode, to_json_native
from mesdash.core.cache.keys import query_hash
from mesdash.core.cache.l1 import get_l1
from mesdash.core.cache.layered import LayeredCache
from mesdash.core.db import binds
from mesdash.core.redis_client import get_redis, key
from mesdash.core.resilience.bulkhead import Bulkhead
from mesdash.core.resilience.errors import CacheExpired, MesdashError
from mesdash.settings import get_settings

log = logging.getLogger(__name__)
TABLE = "dataset"
BUILD_ATTEMPTS = 3  # plan + merge; the last one re-runs every chunk (see build_dataset)
L1_SECONDS = 300  # a process keeps a build's Arrow bytes this long after reading them
REPLACED_GRACE_SECONDS = 60  # a replaced build's Arrow copy lives on this long


@dataclass
class DatasetInfo:
    """What a view needs to know about a kept dataset (``quality``/``as_of`` per the design)."""

    prefix: str
    query_id: str
    rows: int
    spilled: bool
    chunks: int
    quality: dict[str, Any]
    as_of: str
    columns: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # report-specific, JSON-native
    build_id: str = ""  # new for every build: keys the Arrow copy and cached view results


# ------------------------------------------------------------------ raw store ----------
def _key(prefix: str, query_id: str, part: str) -> str:
    return key("dataset", prefix, query_id, part)


def _put(name: str, data: bytes, ttl: int) -> bool:
    client = get_redis()
    if client is not None:
        return bool(client.set(name, data, ex=ttl))
    return get_l1().set(name, data, ttl)


def _get(name: str) -> bytes | None:
    client = get_redis()
    data = client.get(name) if client is not None else get_l1().get(name)
    return data if isinstance(data, bytes) or data is None else bytes(data, "latin-1")


def _delete(name: str) -> None:
    client = get_redis()
    if client is not None:
        client.delete(name)
    else:
        get_l1().delete(name)


def _arrow_key(info: DatasetInfo) -> str:
    """One key per build: its bytes never change, so a process may keep a copy in L1."""
    return _key(info.prefix, info.query_id, f"arrow-{info.build_id}")


def _expire_soon(name: str) -> None:
    client = get_redis()
    if client is not None:
        client.expire(name, REPLACED_GRACE_SECONDS)
    else:
        get_l1().delete(name)


def _get_arrow(info: DatasetInfo) -> bytes | None:
    """The build's Arrow bytes: L1 first, else Redis (then kept in L1 for a while)."""
    name = _arrow_key(info)
    client = get_redis()
    if client is None:
        return get_l1().get(name)
    data = get_l1().get(name)
    if data is None:
        data = _get(name)
        if data:
            get_l1().set(name, data, L1_SECONDS)
    return data


def _check(prefix: str, query_id: str) -> None:
    check_id(prefix, "dataset prefix")
    check_id(query_id)


# ------------------------------------------------------------------ build --------------
def plan_hash(query_id: str, chunks: Sequence[Chunk]) -> str:
    """The chunk-cache hash of a request's plan: its query id and every chunk's bounds or ids."""
    return query_hash({"query_id": query_id, **plan_params(chunks)}, ordered=("chunks",))


def store_dataset(
    prefix: str,
    query_id: str,
    table: pa.Table,
    *,
    quality: Mapping[str, Any] | None = None,
    as_of: str | None = None,
    chunks: int = 1,
    extra: Mapping[str, Any] | None = None,
    spool: QuerySpool | None = None,
    ttl: int | None = None,
) -> DatasetInfo:
    """Keep ``table`` as the dataset: in the cache, or in the spool when the cache refuses it."""
    _check(prefix, query_id)
    spool = spool or QuerySpool()
    ttl = get_settings().query_spool_ttl_seconds if ttl is None else ttl
    info = DatasetInfo(
        prefix,
        query_id,
        table.num_rows,
        False,
        chunks,
        dict(quality or _complete(table.num_rows)),
        as_of or datetime.now().isoformat(timespec="seconds"),
        table.column_names,
        dict(extra or {}),
        uuid.uuid4().hex[:16],
    )
    if _put(_arrow_key(info), encode(table), ttl):
        spool.drop(prefix, query_id)  # a spool file of an earlier run must not outlive this copy
    else:
        spool.write_table(prefix, query_id, table, ttl)
        info.spilled = True
    _publish(info, ttl)
    return info


def _complete(rows: int) -> dict[str, Any]:
    return {"status": "complete", "reasons": [], "observed_rows": rows, "failed_ranges": []}


def build_dataset(
    prefix: str,
    query_id: str,
    chunks: Sequence[Chunk],
    query_fn: QueryFn,
    *,
    schema: pa.Schema | None = None,
    parallel: int = 1,
    bulkhead: Bulkhead | None = None,
    now: Callable[[], datetime] = datetime.now,
    max_rows_per_chunk: int | None = None,
    max_total_rows: int | None = None,
    max_result_mb: float | None = None,
    extra: Mapping[str, Any] | None = None,
    spool: QuerySpool | None = None,
    ttl: int | None = None,
) -> DatasetInfo:
    """Run ``chunks`` through the batch engine (cached chunks are not re-run), merge them and
    keep the result under ``(prefix, query_id)``; above the spill thresholds it is a Parquet
    file written chunk by chunk. ``schema`` gives an empty result its columns.

    The chunk cache is keyed by ``plan_hash(query_id, chunks)``: a request whose plan
    changed (other lots behind a wildcard, another grain) never reuses a chunk of the old
    plan under the same index.

    A chunk the plan skipped as cached may expire before the merge reads it (its TTL ran
    out in between): the plan runs again — the expired chunks re-run — and the last attempt
    re-runs every chunk, so the merge reads only fresh ones. It is never ``CacheExpired``."""
    _check(prefix, query_id)
    chunk_hash = plan_hash(query_id, chunks)
    spool = spool or QuerySpool()
    ttl = get_settings().query_spool_ttl_seconds if ttl is None else ttl
    for attempt in range(1, BUILD_ATTEMPTS + 1):
        plan = execute_plan(
            chunks,
            query_fn,
            parallel=parallel,
            query_hash=chunk_hash,
            skip_cached=attempt < BUILD_ATTEMPTS,
            cache_prefix=prefix,
            max_rows_per_chunk=max_rows_per_chunk,
            bulkhead=bulkhead,
            now=now,
        )
        try:
            merged = merge_chunks(
                prefix,
                chunk_hash,
                spool=spool,
                spool_namespace=prefix,
                query_id=query_id,
                max_total_rows=max_total_rows,
                max_result_mb=max_result_mb,
                spool_ttl_seconds=ttl,
            )
            break
        except CacheExpired as exc:
            if attempt == BUILD_ATTEMPTS:
                raise
            log.info("dataset %s/%s: %s before the merge; running the plan again", prefix, query_id, exc)
    if merged.table is not None:
        table = merged.table if merged.rows or schema is None else schema.empty_table()
        return store_dataset(
            prefix,
            query_id,
            table,
            quality=merged.quality,
            as_of=plan.as_of,
            chunks=len(chunks),
            extra=extra,
            spool=spool,
            ttl=ttl,
        )
    info = DatasetInfo(
        prefix,
        query_id,
        merged.rows,
        True,
        len(chunks),
        merged.quality,
        plan.as_of,
        merged.columns,
        dict(extra or {}),
        uuid.uuid4().hex[:16],
    )
    _publish(info, ttl)
    return info


def _publish(info: DatasetInfo, ttl: int) -> None:
    """Make ``info`` the dataset's current build; an earlier build's cached Arrow copy goes
    after a short grace (a view that already read the old info can still finish)."""
    previous = dataset_info(info.prefix, info.query_id)
    _put(_key(info.prefix, info.query_id, "info"), encode(asdict(info)), ttl)
    if previous is not None and previous.build_id != info.build_id and not previous.spilled:
        _expire_soon(_arrow_key(previous))


# ------------------------------------------------------------------ read ---------------
def dataset_info(prefix: str, query_id: str) -> DatasetInfo | None:
    """The kept dataset's info, or None when it is unknown or expired. The data it names may
    be gone already: to reuse a kept dataset, ask ``usable_dataset``."""
    _check(prefix, query_id)
    raw = _get(_key(prefix, query_id, "info"))
    return DatasetInfo(**decode(raw)) if raw else None


def usable_dataset(prefix: str, query_id: str) -> DatasetInfo | None:
    """The kept dataset's info when its data (Arrow copy or spool file) is still there too;
    None when any piece is gone — the caller builds it again rather than answer 410."""
    info = dataset_info(prefix, query_id)
    return info if info is not None and _available(info) else None


def drop_dataset(prefix: str, query_id: str, spool: QuerySpool | None = None) -> None:
    info = dataset_info(prefix, query_id)
    _delete(_key(prefix, query_id, "info"))
    if info is not None:
        _delete(_arrow_key(info))
        get_l1().delete(_arrow_key(info))
    (spool or QuerySpool()).drop(prefix, query_id)


def _expired(prefix: str, query_id: str) -> MesdashError:
    return CacheExpired(f"{prefix} dataset {query_id} expired; run the query again")


_engine: tuple[int, duckdb.DuckDBPyConnection] | None = None
_engine_lock = threading.Lock()


def _view_connection() -> duckdb.DuckDBPyConnection:
    """A fresh connection to the process's in-memory view engine. Opening a DuckDB database
    costs tens of milliseconds, a cursor on an open one a few: every view gets its own
    cursor, so its ``dataset`` (a temporary view or registration) is private to it. A
    forked process (an RQ work horse) opens its own engine."""
    global _engine
    with _engine_lock:
        if _engine is None or _engine[0] != os.getpid():
            _engine = (os.getpid(), duckdb.connect())
        return _engine[1].cursor()


@contextlib.contextmanager
def open_dataset(
    prefix: str, query_id: str, spool: QuerySpool | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, DatasetInfo]]:
    """A private DuckDB connection where the dataset is the table ``dataset``, and its info."""
    try:
        info = dataset_info(prefix, query_id)
    except ValueError:  # a malformed id names no dataset
        info = None
    if info is None:
        raise _expired(prefix, query_id)
    con = _view_connection()
    try:
        if info.spilled:
            spool = spool or QuerySpool()
            if spool.lookup(prefix, query_id) is None:
                raise _expired(prefix, query_id)
            # Registered, not create_view: a view would land in the catalog that every
            # cursor of the shared connection sees, and concurrent views of one spilled
            # dataset then conflict (write-write on "dataset"); a registration is the
            # cursor's own and still scans the file lazily with pushdown.
            try:
                files = pyarrow.dataset.dataset(str(spool.path_for(prefix, query_id)))
            except FileNotFoundError:  # expired and removed since the lookup
                raise _expired(prefix, query_id) from None
            con.register(TABLE, files)
        else:
            data = _get_arrow(info)
            if not data:
                raise _expired(prefix, query_id)
            con.register(TABLE, decode(data))
        try:
            yield con, info
        except (duckdb.Error, OSError) as exc:
            # the spool file expired and was removed while the view read it: the designed
            # answer is 410 (run the query again), not a 500
            if info.spilled and not (spool or QuerySpool()).path_for(prefix, query_id).exists():
                raise _expired(prefix, query_id) from exc
            raise
    finally:
        con.close()


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None
) -> duckdb.DuckDBPyConnection:
    text, bound = binds.render(sql, params, "duckdb")
    return con.execute(text, bound)


def query_dataset(
    prefix: str, query_id: str, sql: str, params: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], DatasetInfo]:
    """Rows (dicts, upper-case keys) of ``sql`` — ``:name`` binds — over the table ``dataset``."""
    with open_dataset(prefix, query_id) as (con, info):
        cursor = _fetch(con, sql, params)
        names = [str(d[0]).upper() for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return rows, info


def iter_dataset_batches(
    prefix: str, query_id: str, sql: str, params: Mapping[str, Any] | None = None, batch_rows: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """``sql`` over the dataset as Arrow record batches, lazily (at least one, maybe empty)."""
    text, bound = binds.render(sql, params, "duckdb")
    with open_dataset(prefix, query_id) as (con, _info):
        reader = con.sql(text, params=bound).to_arrow_reader(batch_rows)
        empty = True
        for batch in reader:
            empty = False
            yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)


def iter_dataset(
    prefix: str, query_id: str, sql: str, params: Mapping[str, Any] | None = None, batch_rows: int = 10_000
) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
    """``sql`` over the dataset in batches of ``(column names, rows)``, lazily; an empty
    result is one batch without rows. Use ``check_dataset`` first where an expired dataset
    must fail before the first byte."""
    with open_dataset(prefix, query_id) as (con, _info):
        cursor = _fetch(con, sql, params)
        names = [str(d[0]).upper() for d in cursor.description or []]
        rows = cursor.fetchmany(batch_rows)
        yield names, rows
        while rows and (rows := cursor.fetchmany(batch_rows)):
            yield names, rows


_views: LayeredCache | None = None


def _view_cache() -> LayeredCache:
    global _views
    if _views is None or _views.l1 is not get_l1():  # (tests swap the process L1)
        _views = LayeredCache("view")
    return _views


def _available(info: DatasetInfo) -> bool:
    """The build's data is still there (a cheap check; no read of the data)."""
    if info.spilled:
        return QuerySpool().lookup(info.prefix, info.query_id) is not None
    name = _arrow_key(info)
    client = get_redis()
    if name in get_l1():
        return True
    return bool(client.exists(name)) if client is not None else False


def cached_view(
    prefix: str, query_id: str, view: str, params: Mapping[str, Any], compute: Callable[[], Any]
) -> tuple[Any, DatasetInfo]:
    """``compute()`` — a view of the dataset, made JSON-native — once per build and
    ``(view, params)``; later calls come from the cache (L1, then Redis), in every process.
    Returns the value and the dataset's info. An expired dataset is ``CacheExpired`` here
    too, cached results or not."""
    try:
        info = dataset_info(prefix, query_id)
    except ValueError:
        info = None
    if info is None or not _available(info):
        raise _expired(prefix, query_id)
    digest = query_hash({"view": view, "params": {k: repr(v) for k, v in params.items()}})
    ttl = get_settings().query_spool_ttl_seconds
    value = _view_cache().get_or_compute(
        f"{prefix}:{query_id}:{info.build_id}:{digest}", lambda: to_json_native(compute()), ttl
    )
    return value, info


def query_view(
    prefix: str, query_id: str, sql: str, params: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], DatasetInfo]:
    """``query_dataset`` through ``cached_view``: JSON-native rows (dates and timestamps as
    ISO strings), computed once per build of the dataset."""
    params = dict(params or {})
    return cached_view(prefix, query_id, sql, params, lambda: query_dataset(prefix, query_id, sql, params)[0])


def check_dataset(prefix: str, query_id: str) -> DatasetInfo:
    """The dataset's info if it can be opened now; ``CacheExpired`` otherwise."""
    with open_dataset(prefix, query_id) as (_con, info):
        return info


__all__ = [
    "DatasetInfo",
    "build_dataset",
    "cached_view",
    "check_dataset",
    "dataset_info",
    "drop_dataset",
    "iter_dataset",
    "iter_dataset_batches",
    "open_dataset",
    "plan_hash",
    "query_dataset",
    "query_view",
    "store_dataset",
    "usable_dataset",
]
