"""Equipment jobs: run the primary query (jobs × transactions of the chosen machines,
batched above the time threshold) once and keep its dataset under ``query_id``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pyarrow as pa

from mesdash.core.batch import Chunk, query_hash
from mesdash.core.batch.dataset import DatasetInfo
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.reports.jobs.schemas import JobQuery
from mesdash.reports.params import Wrap, build_range, plan_grain
from mesdash.settings import get_settings

PREFIX = "jobs"
_TS = pa.timestamp("us")
_JOB_TIMES = ("CREATEDATE", "COMPLETEDATE", "CANCELDATE", "FIRSTCLOCKONDATE", "LASTCLOCKOFFDATE")
SCHEMA = pa.schema(
    [
        *((c, pa.string()) for c in ("JOBID", "RESOURCEID", "RESOURCENAME", "JOBSTATUS", "JOBMODELNAME")),
        ("JOBORDERNAME", pa.string()),
        *((c, _TS) for c in _JOB_TIMES),
        *((c, pa.string()) for c in ("CAUSECODENAME", "REPAIRCODENAME", "SYMPTOMCODENAME")),
        *((c, pa.string()) for c in ("CREATE_EMPNAME", "COMPLETE_EMPNAME", "CONTAINERNAMES")),
        ("JOBTXNHISTORYID", pa.string()),
        ("TXNDATE", _TS),
        *((c, pa.string()) for c in ("FROMJOBSTATUS", "TXN_JOBSTATUS", "STAGENAME", "TOSTAGENAME")),
        *((c, pa.string()) for c in ("TXN_CAUSECODENAME", "TXN_REPAIRCODENAME", "TXN_SYMPTOMCODENAME")),
        *((c, pa.string()) for c in ("USER_NAME", "EMP_NAME", "COMMENTS", "CDONAME")),
    ]
)


def query_id_for(query: JobQuery) -> str:
    return query_hash({**query.hash_params(), "grain": plan_grain(query.days)})


def chunk_query(wh: Warehouse, query: JobQuery) -> Callable[[Chunk, int | None], pa.Table]:
    qb = QueryBuilder(get_settings().oracle_in_batch_size, prefix="m")
    machines = qb.in_condition("j.RESOURCEID", list(query.machines))
    sql = wh.sql("jobs/job_history", machines=machines)

    def run(chunk: Chunk, _max_rows: int | None) -> pa.Table:
        start_ts, end_ts = chunk.bounds()
        result = wh.read_sql_df_slow(sql, {**qb.params, "start_ts": start_ts, "end_ts": end_ts})
        return pa.Table.from_pylist(result.to_dicts(), schema=SCHEMA)

    return run


def build(
    query: JobQuery,
    wh: Warehouse,
    *,
    now: Callable[[], datetime] = datetime.now,
    parallel: int = 1,
    wrap: Wrap | None = None,
) -> DatasetInfo:
    """Run the primary query and keep its dataset (``build_range``)."""
    return build_range(PREFIX, query_id_for(query), query, chunk_query(wh, query), wh, schema=SCHEMA,
                       now=now, parallel=parallel, wrap=wrap, machines=list(query.machines))
