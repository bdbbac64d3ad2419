"""The Warehouse: pooled reads, slow reads (dedicated connection, semaphore, timeout),
streaming reads, a real per-query timeout on every dialect, counted round trips.

Timeouts: a timer cancels the running statement in the database when the deadline passes
(DuckDB ``interrupt()``, PostgreSQL cancel request, Oracle ``cancel()``) and the error is
raised as ``QueryTimeout``; PostgreSQL's ``statement_timeout`` and Oracle's ``call_timeout``
also bound each round trip on the server side in case this process dies first.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from mesdash.core.db import binds
from mesdash.core.db.drivers import Driver, make_driver
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.resilience.bulkhead import Bulkhead
from mesdash.core.resilience.errors import (
    DBUnavailable,
    MesdashError,
    QueryTimeout,
    WarehouseError,
)
from mesdash.settings import Settings, get_settings

Columns = list[str]
Rows = list[tuple[Any, ...]]


class Breaker(Protocol):
    def acquire_permission(self) -> None: ...
    def on_success(self, duration: float) -> None: ...
    def on_failure(self, duration: float) -> None: ...
    def release_permission(self) -> None: ...


class NoBreaker:
    def acquire_permission(self) -> None:
        return None

    def on_success(self, duration: float) -> None:
        return None

    def on_failure(self, duration: float) -> None:
        return None

    def release_permission(self) -> None:
        return None


@dataclass
class QueryResult:
    columns: Columns
    rows: Rows

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_arrow(self) -> Any:
        return rows_to_arrow(self.columns, self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def rows_to_arrow(columns: Sequence[str], rows: Rows) -> Any:
    import pyarrow as pa

    if not rows:
        return pa.table({c: pa.array([], pa.null()) for c in columns})
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})


@dataclass
class QueryStats:
    """Round trips and latencies, for tests (query counts) and diagnostics (p50/p95/p99)."""

    count: int = 0
    slow_count: int = 0
    failures: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    listeners: list[Callable[[str, str], None]] = field(default_factory=list)
    # (path, seconds, ok) of every round trip of every warehouse in the process (metrics)
    observers: ClassVar[list[Callable[[str, float, bool], None]]] = []
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, path: str, sql: str, seconds: float, ok: bool) -> None:
        with self.lock:
            self.count += 1
            self.slow_count += path == "slow"
            self.failures += not ok
            self.latencies.append(seconds)
        for listener in list(self.listeners):
            listener(path, sql)
        for observer in list(self.observers):
            observer(path, seconds, ok)

    def percentiles(self) -> dict[str, float | None]:
        with self.lock:
            data = sorted(self.latencies)
        if not data:
            return {"p50": None, "p95": None, "p99": None}

        def pick(q: float) -> float:
            return round(data[min(len(data) - 1, int(q * len(data)))] * 1000, 2)

        return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


class _Deadline:
    """Cancels the statement when the time is up; remembers that it did.

    A cancel that lands before the driver has started the statement can be lost (DuckDB's
    interrupt, for one, only reaches a running query), so the cancel repeats every half
    second until the call returns and ``stop()`` is called.
    """

    REPEAT_SECONDS = 0.5

    def __init__(self, seconds: float, cancel: Callable[[], None]) -> None:
        self.fired = False
        self.expires = time.monotonic() + seconds
        self._stopped = threading.Event()
        self._cancel = cancel
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self._thread.start()

    def _run(self, seconds: float) -> None:
        if self._stopped.wait(seconds):
            return
        self.fired = True
        while True:
            with contextlib.suppress(Exception):
                self._cancel()
            if self._stopped.wait(self.REPEAT_SECONDS):
                return

    def check(self) -> None:
        if self.fired or time.monotonic() >= self.expires:
            self.fired = True
            raise QueryTimeout()

    def stop(self) -> None:
        self._stopped.set()


class Warehouse:
    def __init__(
        self,
        url: str | None = None,
        settings: Settings | None = None,
        *,
        read_only: bool = True,
        breaker: Breaker | None = None,
        bulkhead: Bulkhead | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.url = url or self.settings.database_url
        self.driver: Driver = make_driver(self.url, self.settings, read_only)
        self.dialect = self.driver.dialect
        self.loader = SQLLoader(self.dialect)
        self.breaker: Breaker = breaker or NoBreaker()
        self.bulkhead = bulkhead or Bulkhead(
            self.settings.db_slow_max_concurrent,
            self.settings.db_slow_semaphore_wait_seconds,
            self.settings.db_busy_retry_after_seconds,
        )
        self.stats = QueryStats()

    # ----------------------------------------------------------------- helpers ----------
    def sql(self, name: str, **fragments: str) -> str:
        return self.loader.load(name, **fragments)

    @contextlib.contextmanager
    def _guard(self, sql: str, path: str) -> Iterator[None]:
        """Breaker accounting and statistics around one warehouse call."""
        self.breaker.acquire_permission()
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        except (DBUnavailable, QueryTimeout):
            self.breaker.on_failure(time.monotonic() - start)
            raise
        except BaseException:
            self.breaker.release_permission()  # not the warehouse's health: uncounted
            raise
        else:
            self.breaker.on_success(time.monotonic() - start)
        finally:
            self.stats.record(path, sql, time.monotonic() - start, ok)

    def _mapped(self, exc: BaseException, deadline: _Deadline | None) -> MesdashError:
        if isinstance(exc, MesdashError):
            return exc
        if deadline is not None and deadline.fired:
            return QueryTimeout()
        return self.driver.classify(exc)

    def _execute(self, cursor: Any, sql: str, params: Mapping[str, Any] | None) -> None:
        text, values = binds.render(sql, params, self.dialect)
        cursor.execute(text, values)

    def _columns(self, cursor: Any) -> Columns:
        return [str(d[0]).upper() for d in cursor.description or []]

    # ---------------------------------------------------------------- pooled path --------
    def read_sql_df(
        self, sql: str, params: Mapping[str, Any] | None = None, timeout_seconds: float | None = None
    ) -> QueryResult:
        """A short query on a pooled connection (``DB_CALL_TIMEOUT_MS`` unless given)."""
        timeout = timeout_seconds or self.settings.db_call_timeout_ms / 1000
        with self._guard(sql, "pooled"):
            deadline = None
            try:
                with self.driver.pooled() as conn:
                    cursor = self.driver.cursor(conn)
                    deadline = _Deadline(timeout, lambda: self.driver.cancel(conn))
                    try:
                        self.driver.prepare(cursor, timeout)
                        self._execute(cursor, sql, params)
                        columns = self._columns(cursor)
                        rows = self.driver.convert_rows(cursor, cursor.fetchall())
                    finally:
                        deadline.stop()
                        cursor.close()
            except Exception as exc:
                raise self._mapped(exc, deadline) from None
        return QueryResult(columns, rows)

    # ------------------------------------------------------------------ slow path --------
    def read_sql_df_slow(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        timeout_seconds: float | None = None,
        slot_wait_seconds: float | None = None,
    ) -> QueryResult:
        """A heavy query on a dedicated connection, holding a slow-query slot."""
        stream = self._stream(sql, params, timeout_seconds, None, slot_wait_seconds)
        columns = next(stream)
        rows: Rows = []
        for batch in stream:
            rows.extend(batch)
        return QueryResult(columns, rows)

    def read_sql_df_slow_iter(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        timeout_seconds: float | None = None,
        batch_size: int | None = None,
        slot_wait_seconds: float | None = None,
    ) -> Iterator[tuple[Columns, Rows]]:
        """Yield ``(columns, rows)`` batches via ``fetchmany``; the connection and the slot
        are released when the iterator ends, fails or is abandoned. ``slot_wait_seconds``:
        how long to wait for a slow-query slot (batch threads of one request wait up to
        their query timeout; default: the semaphore's own bound)."""
        stream = self._stream(sql, params, timeout_seconds, batch_size, slot_wait_seconds)
        columns = next(stream)
        for rows in stream:
            yield columns, rows

    def _stream(
        self,
        sql: str,
        params: Mapping[str, Any] | None,
        timeout_seconds: float | None,
        batch_size: int | None,
        slot_wait_seconds: float | None = None,
    ) -> Iterator[Any]:
        """Yields the column names first, then row batches (the slow path's one engine)."""
        timeout = timeout_seconds or self.settings.db_slow_call_timeout_ms / 1000
        size = batch_size or self.settings.db_slow_fetchmany_size
        with self._guard(sql, "slow"), self.bulkhead.slot(slot_wait_seconds):
            deadline: _Deadline | None = None
            conn = None
            try:
                conn = self.driver.dedicated(timeout)
                deadline = _Deadline(timeout, lambda: self.driver.cancel(conn))
                cursor = self.driver.stream_cursor(conn)
                try:
                    self._execute(cursor, sql, params)
                    yield self._columns(cursor)
                    while True:
                        deadline.check()
                        rows = cursor.fetchmany(size)
                        if not rows:
                            break
                        yield self.driver.convert_rows(cursor, rows)
                finally:
                    with contextlib.suppress(Exception):
                        cursor.close()
            except GeneratorExit:
                raise
            except Exception as exc:
                raise self._mapped(exc, deadline) from None
            finally:
                if deadline is not None:
                    deadline.stop()
                if conn is not None:
                    self.driver.release(conn)

    # ------------------------------------------------------------- health and admin ------
    def ping(self, timeout_seconds: float = 3.0) -> float:
        """``SELECT 1`` on a dedicated connection, outside the breaker and the semaphore.
        Returns the latency in seconds; raises a WarehouseError when it fails."""
        start = time.monotonic()
        conn = None
        deadline = None
        try:
            conn = self.driver.dedicated(timeout_seconds)
            deadline = _Deadline(timeout_seconds, lambda: self.driver.cancel(conn))
            cursor = self.driver.cursor(conn)
            cursor.execute("SELECT 1 FROM DUAL" if self.dialect == "oracle" else "SELECT 1")
            cursor.fetchall()
            cursor.close()
        except Exception as exc:
            raise self._mapped(exc, deadline) from None
        finally:
            if deadline is not None:
                deadline.stop()
            if conn is not None:
                self.driver.release(conn)
        return time.monotonic() - start

    def pool_status(self) -> dict[str, Any]:
        return self.driver.pool_status()

    @contextlib.contextmanager
    def write_connection(self) -> Iterator[Any]:
        """A raw connection for init-db and the generator (autocommit where it applies)."""
        if self.dialect == "duckdb":
            yield self.driver.root  # type: ignore[attr-defined]
            return
        conn = self.driver.dedicated(3600)
        try:
            if self.dialect == "postgresql":
                conn.autocommit = True
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        self.driver.dispose()


_lock = threading.Lock()
_instance: Warehouse | None = None


def get_warehouse() -> Warehouse:
    """The process's warehouse (one breaker, one semaphore, one pool)."""
    global _instance
    with _lock:
        if _instance is None:
            from mesdash.core.resilience.runtime import make_breaker

            _instance = Warehouse(breaker=make_breaker())
        return _instance


def reset_warehouse() -> None:
    global _instance
    with _lock:
        if _instance is not None:
            with contextlib.suppress(Exception):
                _instance.close()
        _instance = None


__all__ = ["QueryResult", "Warehouse", "WarehouseError", "get_warehouse", "rows_to_arrow"]
