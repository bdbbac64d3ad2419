"""What the warehouse holds: row count and date span per table, cached in-process.

One UNION ALL statement (one round trip) counts every table of the schema; the answer is
kept for ``SUMMARY_TTL_SECONDS`` per warehouse URL, and concurrent callers on a miss wait
for the one query in flight instead of starting their own.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from cachetools import TTLCache

from mesdash.core.db import SQLLoader, get_warehouse
from mesdash.core.db.schema import table_names
from mesdash.core.db.warehouse import Warehouse
from mesdash.web.schemas import TableSummary, WarehouseSummary

SUMMARY_TTL_SECONDS = 60.0
NO_TIMESTAMP = "CAST(NULL AS TIMESTAMP)"

# The timestamp that places a table's rows in time; master data has none.
MAIN_TIMESTAMP: dict[str, str] = {
    "DW_MES_LOTWIPHISTORY": "TRACKINTIMESTAMP",
    "DW_MES_LOTREJECTHISTORY": "TXNDATE",
    "DW_MES_LOTMATERIALSHISTORY": "TXNDATE",
    "DW_MES_HOLDRELEASEHISTORY": "HOLDTXNDATE",
    "DW_MES_PJ_COMBINEDASSYLOTS": "ORIGINALSTARTDATE",
    "DW_MES_HM_LOTMOVEOUT": "TXNDATE",
    "DW_MES_JOB": "CREATEDATE",
    "DW_MES_JOBTXNHISTORY": "TXNDATE",
    "DW_MES_RESOURCESTATUS_SHIFT": "TXNDATE",
}

_cache: TTLCache[str, WarehouseSummary] = TTLCache(maxsize=8, ttl=SUMMARY_TTL_SECONDS)
_lock = threading.Lock()


def summary_sql(loader: SQLLoader) -> str:
    """One SELECT per schema table, joined with UNION ALL (names from the schema only)."""
    parts = [
        _without_comments(
            loader.load("warehouse/table_summary", table=t, ts=MAIN_TIMESTAMP.get(t, NO_TIMESTAMP))
        )
        for t in table_names()
    ]
    return "\nUNION ALL\n".join(parts)


def _without_comments(sql: str) -> str:
    """The file's header comment once per table would only bloat the statement."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def read_summary(wh: Warehouse) -> WarehouseSummary:
    """Query the warehouse now (no cache)."""
    result = wh.read_sql_df(summary_sql(wh.loader))
    by_name = {str(row["TABLE_NAME"]).strip(): row for row in result.to_dicts()}
    tables = [
        TableSummary(
            table=name,
            rows=int(by_name[name]["ROW_COUNT"]),
            first=by_name[name]["FIRST_AT"],
            last=by_name[name]["LAST_AT"],
        )
        for name in table_names()
    ]
    return WarehouseSummary(dialect=wh.dialect, as_of=datetime.now(UTC), tables=tables)


def warehouse_summary() -> WarehouseSummary:
    """The process warehouse's summary, at most ``SUMMARY_TTL_SECONDS`` old."""
    wh = get_warehouse()
    with _lock:
        cached = _cache.get(wh.url)
        if cached is None:
            cached = _cache[wh.url] = read_summary(wh)
        return cached


def clear_summary_cache() -> None:
    with _lock:
        _cache.clear()
