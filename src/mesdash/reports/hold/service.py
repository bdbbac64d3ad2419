"""Hold history: run the primary query once per range (batched above the threshold) and keep
its dataset under ``query_id``; the "today" snapshot is the same query over today's factory
day, re-read at most every ``HOLD_TODAY_REFRESH_SECONDS``.

A plan's first chunk also reads the holds created before the range and still on hold at its
start (``carry_in``), so on-hand quantities are right from the first day and a decomposed
plan holds every hold exactly once. The dataset's *cutoff* — the earlier of the range's end
and the time it was read — is the moment "still on hold" refers to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from mesdash.core.batch import Chunk, query_hash
from mesdash.core.batch.dataset import DatasetInfo, usable_dataset
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.factory_day import day_of, range_bounds
from mesdash.reports.hold.schemas import HoldQuery
from mesdash.reports.params import Wrap, build_range, plan_grain
from mesdash.settings import get_settings

PREFIX = "hold"
_STR, _TS = pa.string(), pa.timestamp("us")
SCHEMA = pa.schema(
    [
        *((c, _STR) for c in ("HISTORYMAINLINEID", "CONTAINERID", "CONTAINERNAME", "PJ_WORKORDER")),
        *((c, _STR) for c in ("PRODUCTLINENAME", "WORKCENTERNAME")),
        ("HOLDTXNDATE", _TS),
        ("RELEASETXNDATE", _TS),
        *((c, _STR) for c in ("HOLDEMP", "HOLDEMPDEPTNAME", "HOLDREASONID", "HOLDREASONNAME")),
        *((c, _STR) for c in ("HOLDCOMMENTS", "RELEASEEMP", "RELEASECOMMENTS", "NCRID")),
        ("FUTUREHOLDCOMMENTS", _STR),
        ("QTY", pa.float64()),
    ]
)


def query_id_for(query: HoldQuery, **extra: Any) -> str:
    return query_hash({**query.hash_params(), "grain": plan_grain(query.days), **extra})


def chunk_query(wh: Warehouse) -> Callable[[Chunk, int | None], pa.Table]:
    sql = wh.sql("hold/hold_history")

    def run(chunk: Chunk, _max_rows: int | None) -> pa.Table:
        start_ts, end_ts = chunk.bounds()
        binds = {"start_ts": start_ts, "end_ts": end_ts, "carry_in": int(chunk.index == 0)}
        result = wh.read_sql_df_slow(sql, binds)
        return pa.Table.from_pylist(result.to_dicts(), schema=SCHEMA)

    return run


def _build(
    query: HoldQuery,
    query_id: str,
    wh: Warehouse,
    now: datetime,
    parallel: int,
    ttl: int | None,
    wrap: Wrap | None = None,
) -> DatasetInfo:
    cutoff = min(range_bounds(query.start_date, query.end_date)[1], now)
    return build_range(PREFIX, query_id, query, chunk_query(wh), wh, schema=SCHEMA, now=lambda: now,
                       parallel=parallel, wrap=wrap, ttl=ttl, cutoff=cutoff.isoformat(timespec="seconds"))


def build(
    query: HoldQuery,
    wh: Warehouse,
    *,
    now: Callable[[], datetime] = datetime.now,
    parallel: int = 1,
    wrap: Wrap | None = None,
) -> DatasetInfo:
    """Run the primary query and keep its dataset (``build_range``)."""
    return _build(query, query_id_for(query), wh, now(), parallel, None, wrap)


def today_dataset(wh: Warehouse, *, now: Callable[[], datetime] = datetime.now) -> DatasetInfo:
    """The dataset of today's factory day, re-read once per refresh slot."""
    moment = now()
    refresh = max(1, get_settings().hold_today_refresh_seconds)
    today: date = day_of(moment)
    query = HoldQuery(start_date=today, end_date=today)
    query_id = query_id_for(query, today_slot=int(moment.timestamp() // refresh))
    info = usable_dataset(PREFIX, query_id)  # kept, with its data: else built again, never 410
    return info or _build(query, query_id, wh, moment, 1, 4 * refresh)
