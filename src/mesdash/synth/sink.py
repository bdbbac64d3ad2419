"""Bulk writers: Arrow tables into DuckDB (registered scan) or PostgreSQL (COPY, CSV)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv

from mesdash.core.db.schema import create_indexes, init_db

COPY_ROWS = 200_000


class Sink(Protocol):
    def write(self, table: str, data: pa.Table) -> None: ...


class DuckSink:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def write(self, table: str, data: pa.Table) -> None:
        if not data.num_rows:
            return
        self.conn.register("synth_batch", data)
        try:
            self.conn.execute(f"INSERT INTO dwh.{table} SELECT * FROM synth_batch")
        finally:
            self.conn.unregister("synth_batch")


class PostgresSink:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def write(self, table: str, data: pa.Table) -> None:
        if not data.num_rows:
            return
        columns = ", ".join(data.column_names)
        options = pacsv.WriteOptions(include_header=False)
        with self.conn.cursor() as cur, cur.copy(
            f"COPY dwh.{table} ({columns}) FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            for start in range(0, data.num_rows, COPY_ROWS):
                buf = io.BytesIO()
                pacsv.write_csv(data.slice(start, COPY_ROWS), buf, options)
                copy.write(buf.getvalue())


@contextlib.contextmanager
def open_sink(warehouse: Any, memory_limit: str | None = None) -> Iterator[Sink]:
    """Fresh tables (no indexes) → yield a sink → indexes. DuckDB runs with a bounded
    memory limit while loading; the previous limit is restored afterwards."""
    with warehouse.write_connection() as conn:
        init_db(conn, drop=True, indexes=False)
        if warehouse.dialect == "duckdb":
            previous = conn.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            if memory_limit:
                conn.execute(f"SET memory_limit = '{memory_limit}'")
            try:
                yield DuckSink(conn)
                create_indexes(conn)
                conn.execute("CHECKPOINT")
            finally:
                conn.execute(f"SET memory_limit = '{previous}'")
        elif warehouse.dialect == "postgresql":
            yield PostgresSink(conn)
            create_indexes(conn)
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
        else:
            raise ValueError(f"the generator does not write to {warehouse.dialect}")
