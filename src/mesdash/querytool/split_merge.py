"""Split / merge history of one lot from DW_MES_HM_LOTMOVEOUT (split and combine rows).

That table has 49M rows and no CONTAINERID index. The default *fast* mode reads only the
last ``FAST_WINDOW_DAYS`` (about 6 months, a TXNDATE range the index serves) and at most
``FAST_MAX_ROWS`` rows (500; one more is fetched to tell a full page from a cut one), on a
pooled connection with its short timeout. The *full* mode has neither bound and therefore
only ever runs as a job (``run_full_job``): it streams the scan on the slow path and keeps
the rows as a dataset for CSV export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from mesdash.core.batch import query_hash
from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import store_dataset
from mesdash.core.db.warehouse import Warehouse, rows_to_arrow
from mesdash.core.jobs import JobContext, JobKind
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.querytool.jobs import request_params

FAST_WINDOW_DAYS = 183
FAST_MAX_ROWS = 500
SPLIT_CDO = "SplitLot"
COMBINE_CDO = "CombineLot"
DATASET_PREFIX = "querytool-splitmerge"
FULL_JOB = JobKind(
    name="querytool-splitmerge", queue="query-tool", func="mesdash.querytool.split_merge:run_full_job"
)
COLUMNS = (
    "TXNDATE",
    "CDONAME",
    "CALLBYCDONAME",
    "CONTAINERID",
    "CONTAINERNAME",
    "FROMCONTAINERID",
    "FROMCONTAINERNAME",
    "QTY",
    "HISTORYMAINLINEID",
)


def _container(container_id: str) -> str:
    cid = container_id.strip()
    if not cid:
        raise ValidationFailed("container_id: give a container id")
    return cid


def _binds(cid: str) -> dict[str, Any]:
    return {"container_id": cid, "cdo_split": SPLIT_CDO, "cdo_combine": COMBINE_CDO}


def _kind(row: dict[str, Any]) -> str:
    return "split" if row["CDONAME"] == SPLIT_CDO else "merge"


def fast_history(
    wh: Warehouse, container_id: str, *, now: Callable[[], datetime] = datetime.now
) -> dict[str, Any]:
    """The lot's split / combine rows of the last ~6 months, newest first, at most 500."""
    cid = _container(container_id)
    until = now()
    since = until - timedelta(days=FAST_WINDOW_DAYS)
    result = wh.read_sql_df(
        wh.sql("querytool/split_merge_recent"),
        {**_binds(cid), "since": since, "until": until, "max_rows": FAST_MAX_ROWS + 1},
    )
    rows = [{**r, "EVENT": _kind(r)} for r in result.to_dicts()[:FAST_MAX_ROWS]]
    cut = len(result) > FAST_MAX_ROWS
    return {
        "container_id": cid,
        "mode": "fast",
        "window": {
            "since": since.isoformat(timespec="seconds"),
            "until": until.isoformat(timespec="seconds"),
        },
        "data": rows,
        "count": len(rows),
        "quality": {
            "status": "truncated" if cut else "complete",
            "reasons": ["row_cap"] if cut else [],
            "observed_rows": len(rows),
            "failed_ranges": [],
        },
        "as_of": until.isoformat(timespec="seconds"),
    }


def full_params(container_id: str) -> dict[str, Any]:
    return {"container_id": _container(container_id)}


def full_query_id(container_id: str) -> str:
    """Where a full-mode job keeps its rows (the dataset behind ``csv_url``)."""
    return query_hash({"kind": "split-merge-full", "container_id": container_id})


def run_full_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Every split / combine row that names the lot: streamed, kept as a dataset."""
    from mesdash.core.db.warehouse import get_warehouse

    cid = _container(request_params(params)["container_id"])
    wh = get_warehouse()
    ctx.progress(total=1, completed=0, stage="scanning DW_MES_HM_LOTMOVEOUT")
    rows: list[tuple[Any, ...]] = []
    columns: list[str] = list(COLUMNS)
    for names, batch in wh.read_sql_df_slow_iter(wh.sql("querytool/split_merge_full"), _binds(cid)):
        columns = names
        rows.extend(batch)
        ctx.check()
    data = [dict(zip(columns, row, strict=True)) for row in rows]
    data = [{**r, "EVENT": _kind(r)} for r in data]
    query_id = full_query_id(cid)
    empty = pa.table({c: pa.array([], pa.string()) for c in columns})
    table = rows_to_arrow(columns, rows) if rows else empty
    store_dataset(DATASET_PREFIX, query_id, table, extra={"container_id": cid})
    ctx.progress(completed=1, stage="done")
    return {
        "container_id": cid,
        "mode": "full",
        "query_id": query_id,
        "data": data,
        "count": len(data),
        "csv_url": f"/api/query-tool/split-merge-history/export/{query_id}",
        "as_of": datetime.now().isoformat(timespec="seconds"),
    }


def full_csv(query_id: str) -> Iterator[bytes]:
    """CSV (UTF-8 BOM) of a finished full-mode job's rows; ``CacheExpired`` once gone."""
    sql = "SELECT * FROM dataset ORDER BY TXNDATE DESC, HISTORYMAINLINEID"
    return dataset_csv(DATASET_PREFIX, query_id, sql)
