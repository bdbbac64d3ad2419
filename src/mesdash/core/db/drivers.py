"""Per-dialect connection handling: how to open, cancel, stream and classify errors.

DuckDB is driven natively (one database object per process, a cursor per reader — DuckDB
has no network pool to manage); PostgreSQL and Oracle go through a SQLAlchemy engine whose
QueuePool serves the pooled path, while the slow path opens dedicated connections with the
same dialect's ``connect`` so both share one URL parser.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mesdash.core.redact import redact
from mesdash.core.resilience.errors import (
    DBUnavailable,
    PoolExhausted,
    QueryTimeout,
    WarehouseError,
)
from mesdash.settings import Settings

log = logging.getLogger(__name__)


class Driver(ABC):
    dialect = ""

    @abstractmethod
    def pooled(self) -> contextlib.AbstractContextManager[Any]:
        """See the concrete drivers."""

    @abstractmethod
    def dedicated(self, timeout_seconds: float) -> Any:
        """See the concrete drivers."""

    @abstractmethod
    def cancel(self, conn: Any) -> None:
        """See the concrete drivers."""

    def cursor(self, conn: Any) -> Any:
        """A cursor on ``conn`` whose statement ``cancel(conn)`` interrupts."""
        return conn.cursor()

    def stream_cursor(self, conn: Any) -> Any:
        return self.cursor(conn)

    def prepare(self, cursor: Any, timeout_seconds: float) -> None:  # noqa: B027 - optional hook
        """Per-call setup on a pooled connection (timeouts); nothing by default."""

    @abstractmethod
    def classify(self, exc: BaseException) -> WarehouseError:
        """See the concrete drivers."""

    def pool_status(self) -> dict[str, Any]:
        return {"kind": "none"}

    def release(self, conn: Any) -> None:
        """Give back a connection from ``dedicated()``."""
        with contextlib.suppress(Exception):
            conn.close()

    def dispose(self) -> None:  # noqa: B027 - optional hook
        """Close every connection the driver holds; nothing by default."""

    def convert_rows(self, cursor: Any, rows: list[Any]) -> list[tuple[Any, ...]]:
        return rows


def _db_error(dialect: str, exc: BaseException, code: str | None) -> WarehouseError:
    log.warning("warehouse error on %s: %s", dialect, redact(str(exc)).splitlines()[0][:300])
    suffix = f" ({code})" if code else ""
    return WarehouseError(f"the warehouse rejected the query{suffix}")


# --------------------------------------------------------------------------- DuckDB ----
def _remove_stale_temp_folders(base: Path) -> None:
    """Spill folders (named by pid) of processes that died without closing DuckDB."""
    for folder in base.iterdir():
        if folder.is_dir() and folder.name.isdigit() and not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B\s*$")


def size_bytes(text: str) -> int:
    """``512MiB`` / ``1 GB`` / ``100B`` in bytes (DuckDB's reading: KB = 1000, KiB = 1024);
    ``""`` is 0."""
    if not text:
        return 0
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, prefix, binary = match.groups()
    power = "_KMGT".index(prefix.upper()) if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


class DuckDBDriver(Driver):
    """One database instance per process, a cursor (a connection of its own) per reader.

    A read-only instance gives its memory back when it is idle and holds more than
    ``DUCKDB_REOPEN_ABOVE``: DuckDB loads the warehouse's ART indexes lazily, node by node,
    and never unloads them (its buffer cache, too, stays until the cap), so a process that
    reads many different lots — a trace job, a long-running server — would grow to the cap
    and beyond. When the last cursor is released and ``duckdb_memory()`` is above the
    threshold (checked at most every ``REOPEN_CHECK_SECONDS``), the instance is closed, which
    frees everything it held; the next cursor opens it again (tens of milliseconds).
    """

    dialect = "duckdb"
    REOPEN_CHECK_SECONDS = 1.0

    def __init__(self, path: str, read_only: bool, settings: Settings) -> None:
        import duckdb

        self._duckdb = duckdb
        self.path = path
        self.settings = settings
        self.read_only = read_only and path != ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.reopen_above = size_bytes(settings.duckdb_reopen_above) if self.read_only else 0
        self.reopens = 0  # how many times the instance was given back (tests, diagnostics)
        self._lock = threading.RLock()
        self._users = 0  # cursors handed out and not yet released
        self._checked = 0.0
        self._disposed = False
        self._root: Any = self._open()

    def _open(self) -> Any:
        try:
            root = self._duckdb.connect(self.path, read_only=self.read_only)
        except self._duckdb.Error as exc:
            raise DBUnavailable(f"cannot open the embedded warehouse: {exc}") from None
        if self.read_only:  # serve and worker processes; the generator sets its own cap
            self._limit_reader(root)
        return root

    @property
    def root(self) -> Any:
        """The instance's own connection (opened again if it was given back)."""
        with self._lock:
            if self._root is None:
                if self._disposed:
                    raise DBUnavailable("the embedded warehouse was closed")
                self._root = self._open()
            return self._root

    def _limit_reader(self, root: Any) -> None:
        """Cap the buffer pool (DUCKDB_MEMORY_LIMIT) and let big operators spill to a folder
        of this process's own (DuckDB removes it on close; folders of dead processes go here).
        Settings are per database instance, which the process shares across connections."""
        settings = self.settings
        if settings.duckdb_memory_limit:
            root.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")  # validated pattern
        base = settings.duckdb_temp_path.resolve()
        base.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp_folders(base)
        folder = str(base / str(os.getpid()))
        current = root.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        if current != folder:
            try:
                root.execute("SET temp_directory = $folder", {"folder": folder})
            except self._duckdb.Error as exc:  # this process's instance has spilled already
                log.warning("DuckDB temp_directory stays %s: %s", current, exc)

    # ------------------------------------------------------------- cursors -------------
    def _acquire(self) -> Any:
        with self._lock:
            cursor = self.root.cursor()
            self._users += 1
            return cursor

    def release(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()
        with self._lock:
            self._users -= 1
            if self._users == 0 and self.reopen_above:
                self._reopen_if_over()

    def _reopen_if_over(self) -> None:
        """Close the idle instance when it holds more than ``reopen_above`` (lock held)."""
        now = time.monotonic()
        if self._root is None or now - self._checked < self.REOPEN_CHECK_SECONDS:
            return
        self._checked = now
        try:
            held = self.memory_bytes()
        except self._duckdb.Error:
            return
        if held <= self.reopen_above:
            return
        log.info("DuckDB holds %d MiB (> DUCKDB_REOPEN_ABOVE %s) while idle: reopening %s",
                 held // 2**20, self.settings.duckdb_reopen_above, self.path)
        with contextlib.suppress(Exception):
            self._root.close()
        self._root = None  # the next cursor opens the file again
        self.reopens += 1

    def memory_bytes(self) -> int:
        """What DuckDB holds now (``duckdb_memory()``: cache, indexes, operators)."""
        with self._lock:
            row = self.root.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0]
        return int(row[0] or 0)

    @contextlib.contextmanager
    def pooled(self) -> Iterator[Any]:
        cursor = self._acquire()
        try:
            yield cursor
        finally:
            self.release(cursor)

    def dedicated(self, timeout_seconds: float) -> Any:
        return self._acquire()

    def cancel(self, conn: Any) -> None:
        conn.interrupt()

    def cursor(self, conn: Any) -> Any:
        # A DuckDB "cursor" is already a connection of its own; cursor() on it would open
        # another one that interrupt() on this one cannot reach.
        return conn

    def classify(self, exc: BaseException) -> WarehouseError:
        d = self._duckdb
        if isinstance(exc, d.InterruptException):
            return QueryTimeout()
        if isinstance(exc, d.IOException | d.ConnectionException):
            return DBUnavailable("the embedded warehouse file is not available")
        return _db_error(self.dialect, exc, type(exc).__name__)

    def convert_rows(self, cursor: Any, rows: list[Any]) -> list[tuple[Any, ...]]:
        decimals = [i for i, col in enumerate(cursor.description) if "DECIMAL" in str(col[1])]
        if not decimals or not rows:
            return rows
        out = []
        for row in rows:
            row = list(row)
            for i in decimals:
                if row[i] is not None:
                    row[i] = float(row[i])
            out.append(tuple(row))
        return out

    def dispose(self) -> None:
        with self._lock:
            self._disposed = True
            if self._root is not None:
                self._root.close()


# ------------------------------------------------------------------ SQLAlchemy-based ----
class EngineDriver(Driver):
    """Shared by PostgreSQL and Oracle: a QueuePool engine plus dedicated connections."""

    def __init__(self, url: str, settings: Settings) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import QueuePool

        self.settings = settings
        self.engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=True,
            **self.engine_options(),
        )
        event.listen(self.engine, "connect", self._on_connect)
        self._cargs, self._cparams = self.engine.dialect.create_connect_args(self.engine.url)

    def engine_options(self) -> dict[str, Any]:
        return {}

    def _on_connect(self, dbapi_conn: Any, record: Any) -> None:
        self.setup_connection(dbapi_conn, self.settings.db_call_timeout_ms)

    def setup_connection(self, conn: Any, timeout_ms: int) -> None:
        """Per-connection options (timeouts, type loaders)."""

    @contextlib.contextmanager
    def pooled(self) -> Iterator[Any]:
        import sqlalchemy.exc

        try:
            proxied = self.engine.raw_connection()
        except sqlalchemy.exc.TimeoutError:
            raise PoolExhausted(
                "no warehouse connection became free in time",
                retry_after=self.settings.db_pool_exhausted_retry_after_seconds,
            ) from None
        except sqlalchemy.exc.DBAPIError as exc:
            raise self.classify(exc.orig or exc) from None
        try:
            yield proxied
        finally:
            raw = getattr(proxied, "driver_connection", None)
            if getattr(raw, "broken", False) or getattr(raw, "closed", False):
                proxied.invalidate()  # lost (killed, cut): drop it, no reset on a dead socket
            else:
                with contextlib.suppress(Exception):
                    proxied.rollback()
            proxied.close()

    def dedicated(self, timeout_seconds: float) -> Any:
        try:
            conn = self.connect_dedicated(timeout_seconds)
        except Exception as exc:
            raise self.classify(exc) from None
        return conn

    @abstractmethod
    def connect_dedicated(self, timeout_seconds: float) -> Any:
        """A new connection outside the pool (PostgreSQL and Oracle below)."""

    def pool_status(self) -> dict[str, Any]:
        pool: Any = self.engine.pool
        return {
            "kind": "queue",
            "size": pool.size(),
            "checked_out": pool.checkedout(),
            "overflow": pool.overflow(),
            "max_overflow": self.settings.db_max_overflow,
            "timeout_seconds": self.settings.db_pool_timeout,
        }

    def dispose(self) -> None:
        self.engine.dispose()


def _abort_socket(conn: Any) -> None:
    """Shut a psycopg connection's socket down, so a thread waiting on it returns at once
    with a connection error (a paused server answers neither the query nor a cancel)."""
    with contextlib.suppress(Exception):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


PG_CONNECT_TIMEOUT_SECONDS = 5  # a server that accepts but never completes the handshake


def pg_connect_timeout(call_timeout_seconds: float) -> int:
    """Seconds a new PostgreSQL connection may take: 5, or the call's own timeout when that
    is shorter — connecting is part of the call, and a call must not outwait its budget
    on a paused server. Whole seconds, at least 2: libpq's and psycopg's floor."""
    return max(2, min(PG_CONNECT_TIMEOUT_SECONDS, math.ceil(call_timeout_seconds)))


def _raw_pg(conn: Any) -> Any:
    raw = getattr(conn, "dbapi_connection", conn)
    return getattr(raw, "driver_connection", raw)


class PostgresDriver(EngineDriver):
    dialect = "postgresql"
    CANCEL_TIMEOUT_SECONDS = 2.0  # a cancel request the server does not answer in time ...
    PING_TIMEOUT_SECONDS = 3.0  # ... and a pool pre-ping likewise: cut the socket

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(url, settings)
        # SQLAlchemy's pre-ping waits forever on a paused (SIGSTOPped) server: bound it.
        dialect: Any = self.engine.dialect
        ping = dialect.do_ping

        def bounded_ping(dbapi_conn: Any) -> Any:
            timer = threading.Timer(self.PING_TIMEOUT_SECONDS, _abort_socket, (_raw_pg(dbapi_conn),))
            timer.daemon = True
            timer.start()
            try:
                return ping(dbapi_conn)
            finally:
                timer.cancel()

        dialect.do_ping = bounded_ping

    def setup_connection(self, conn: Any, timeout_ms: int) -> None:
        from psycopg.types.numeric import FloatLoader

        conn = getattr(conn, "driver_connection", conn)
        conn.adapters.register_loader("numeric", FloatLoader)

    def engine_options(self) -> dict[str, Any]:
        timeout = self.settings.db_call_timeout_ms
        return {
            "connect_args": {
                "options": f"-c statement_timeout={timeout}",
                "connect_timeout": pg_connect_timeout(timeout / 1000),
            }
        }

    def connect_dedicated(self, timeout_seconds: float) -> Any:
        import psycopg

        params = dict(self._cparams)
        params["options"] = f"-c statement_timeout={int(timeout_seconds * 1000)}"
        params.setdefault("connect_timeout", pg_connect_timeout(timeout_seconds))
        conn = psycopg.connect(*self._cargs, **params)
        self.setup_connection(conn, int(timeout_seconds * 1000))
        return conn

    def prepare(self, cursor: Any, timeout_seconds: float) -> None:
        ms = int(timeout_seconds * 1000)
        if ms != self.settings.db_call_timeout_ms:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", (str(ms),))

    def cancel(self, conn: Any) -> None:
        raw = _raw_pg(conn)
        try:
            if hasattr(raw, "cancel_safe"):
                raw.cancel_safe(timeout=self.CANCEL_TIMEOUT_SECONDS)
            else:
                raw.cancel()
        except Exception:
            _abort_socket(raw)  # the server did not take the cancel: stop waiting on it
            raise

    def stream_cursor(self, conn: Any) -> Any:
        # A server-side cursor: FETCH FORWARD n per fetchmany, O(batch) client memory.
        return conn.cursor(name="mesdash_stream")

    def classify(self, exc: BaseException) -> WarehouseError:
        import psycopg
        import sqlalchemy.exc

        if isinstance(exc, sqlalchemy.exc.TimeoutError):
            return PoolExhausted(retry_after=self.settings.db_pool_exhausted_retry_after_seconds)
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
            exc = exc.orig
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return QueryTimeout()
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            log.warning("warehouse unreachable: %s", redact(str(exc)).splitlines()[0][:300])
            return DBUnavailable(retry_after=self.settings.db_unavailable_retry_after_seconds)
        return _db_error(self.dialect, exc, getattr(exc, "sqlstate", None))


class OracleDriver(EngineDriver):
    dialect = "oracle"

    def engine_options(self) -> dict[str, Any]:
        # python-oracledb is in thin mode unless init_oracle_client() is called; we never do.
        return {"thick_mode": None}

    def setup_connection(self, conn: Any, timeout_ms: int) -> None:
        conn = getattr(conn, "driver_connection", conn)
        conn.call_timeout = timeout_ms

    def connect_dedicated(self, timeout_seconds: float) -> Any:
        import oracledb

        conn = oracledb.connect(*self._cargs, **self._cparams)
        self.setup_connection(conn, int(timeout_seconds * 1000))
        return conn

    def prepare(self, cursor: Any, timeout_seconds: float) -> None:
        cursor.connection.call_timeout = int(timeout_seconds * 1000)

    def cancel(self, conn: Any) -> None:
        raw = getattr(conn, "dbapi_connection", conn)
        getattr(raw, "driver_connection", raw).cancel()

    def classify(self, exc: BaseException) -> WarehouseError:
        import oracledb
        import sqlalchemy.exc

        if isinstance(exc, sqlalchemy.exc.TimeoutError):
            return PoolExhausted(retry_after=self.settings.db_pool_exhausted_retry_after_seconds)
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
            exc = exc.orig
        code = ""
        if isinstance(exc, oracledb.Error) and exc.args:
            code = getattr(exc.args[0], "full_code", "") or ""
        if code in {"DPI-1067", "ORA-01013", "DPY-4024"}:
            return QueryTimeout()
        if code.startswith(("DPY-6", "ORA-125", "ORA-03113", "ORA-03114", "ORA-12170")):
            return DBUnavailable(retry_after=self.settings.db_unavailable_retry_after_seconds)
        return _db_error(self.dialect, exc, code or None)


def make_driver(url: str, settings: Settings, read_only: bool) -> Driver:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "duckdb":
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path  # duckdb:///rel or duckdb:////abs
        return DuckDBDriver(path or ":memory:", read_only, settings)
    if scheme in {"postgresql", "postgres"}:
        if "+" not in url.split(":", 1)[0]:
            url = "postgresql+psycopg" + url[url.index(":") :]
        return PostgresDriver(url, settings)
    if scheme == "oracle":
        return OracleDriver(url, settings)
    raise ValueError(f"unsupported database URL scheme {scheme!r}")
