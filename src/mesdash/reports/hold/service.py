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
from mesdash.core.batch.dataset import DatasetInfo, build_dataset, dataset_info
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.factory_day import day_of, range_bounds
from mesdash.reports.hold.schemas import HoldQuery
from mesdash.reports.params import Wrap, plan_grain, same, time_plan
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
    end_ts = range_bounds(query.start_date, query.end_date)[1]
    extra = {
        "start_date": query.start_date.isoformat(),
        "end_date": query.end_date.isoformat(),
        "cutoff": min(end_ts, now).isoformat(timespec="seconds"),
    }
    return build_dataset(
        PREFIX,
        query_id,
        time_plan(query),
        (wrap or same)(chunk_query(wh)),
        schema=SCHEMA,
        parallel=parallel,
        bulkhead=wh.bulkhead,
        now=lambda: now,
        extra=extra,
        ttl=ttl,
    )


def build(
    query: HoldQuery,
    wh: Warehouse,
    *,
    now: Callable[[], datetime] = datetime.now,
    parallel: int = 1,
    wrap: Wrap | None = None,
) -> DatasetInfo:
    """Run the primary query (cached chunks are reused) and keep the dataset; ``wrap``
    decorates the chunk query function (a job counts chunks with it)."""
    return _build(query, query_id_for(query), wh, now(), parallel, None, wrap)


def today_dataset(wh: Warehouse, *, now: Callable[[], datetime] = datetime.now) -> DatasetInfo:
    """The dataset of today's factory day, re-read once per refresh slot."""
    moment = now()
    refresh = max(1, get_settings().hold_today_refresh_seconds)
    today: date = day_of(moment)
    query = HoldQuery(start_date=today, end_date=today)
    query_id = query_id_for(query, today_slot=int(moment.timestamp() // refresh))
    info = dataset_info(PREFIX, query_id)
    return info or _build(query, query_id, wh, moment, 1, 4 * refresh)
