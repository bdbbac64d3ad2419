"""``init-db``: the warehouse tables (our copy of the factory contract) and join-key indexes."""

from __future__ import annotations

import re
from typing import Any

from mesdash.core.db.sql_loader import SQL_ROOT

# Join keys the queries filter and join on (design: init-db creates these indexes).
INDEXES: dict[str, list[str]] = {
    "DW_MES_CONTAINER": ["CONTAINERID", "SPLITFROMID", "CONTAINERNAME", "MFGORDERNAME", "FIRSTNAME"],
    "DW_MES_LOTWIPHISTORY": ["CONTAINERID", "EQUIPMENTID", "TRACKINTIMESTAMP"],
    "DW_MES_LOTREJECTHISTORY": ["CONTAINERID", "TXNDATE"],
    "DW_MES_LOTMATERIALSHISTORY": ["CONTAINERID"],
    "DW_MES_HOLDRELEASEHISTORY": ["CONTAINERID", "HOLDTXNDATE"],
    "DW_MES_PJ_COMBINEDASSYLOTS": ["CONTAINERID", "LOTID", "FINISHEDNAME"],
    "DW_MES_JOB": ["RESOURCEID", "JOBID"],
    "DW_MES_JOBTXNHISTORY": ["JOBID"],
    "DW_MES_RESOURCESTATUS_SHIFT": ["HISTORYID", "TXNDATE"],
    "DW_MES_RESOURCE": ["RESOURCEID"],
}


def table_ddl() -> list[str]:
    """The CREATE statements of ``sql/schema/dwh.sql``, one per item."""
    text = (SQL_ROOT / "schema" / "dwh.sql").read_text(encoding="utf-8")
    text = re.sub(r"--[^\n]*", "", text)
    return [s.strip() for s in text.split(";") if s.strip()]


def table_names() -> list[str]:
    return re.findall(r"CREATE TABLE IF NOT EXISTS dwh\.(\w+)", "\n".join(table_ddl()))


def table_columns() -> dict[str, list[str]]:
    """Column names per table, in DDL order."""
    out: dict[str, list[str]] = {}
    for stmt in table_ddl():
        m = re.match(r"CREATE TABLE IF NOT EXISTS dwh\.(\w+)\s*\((.*)\)\s*$", stmt, re.DOTALL)
        if m:
            out[m.group(1)] = [line.strip().split()[0] for line in m.group(2).split("\n") if line.strip()]
    return out


def index_ddl() -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS ix_{table.lower()}_{col.lower()} ON dwh.{table} ({col})"
        for table, cols in INDEXES.items()
        for col in cols
    ]


def init_db(conn: Any, *, drop: bool = False, indexes: bool = True) -> None:
    """Create schema ``dwh`` and its tables (and indexes) on DuckDB or PostgreSQL."""
    cursor = conn.cursor()
    try:
        if drop:
            for name in table_names():
                cursor.execute(f"DROP TABLE IF EXISTS dwh.{name}")
        for stmt in table_ddl():
            cursor.execute(stmt)
        if indexes:
            create_indexes(conn)
    finally:
        cursor.close()


def create_indexes(conn: Any) -> None:
    """Indexes after bulk loads (building them once is faster than maintaining them)."""
    cursor = conn.cursor()
    try:
        for stmt in index_ddl():
            cursor.execute(stmt)
    finally:
        cursor.close()
