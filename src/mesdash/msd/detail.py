"""The analysis detail (one row per lot × loss reason, a lot without defects once): built
column by column while lots stream through, kept as a report dataset (``core.batch.dataset``:
Arrow in the cache, or a Parquet file in the spool), paged and exported with DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from mesdash.core.batch.csv_export import dataset_csv
from mesdash.core.batch.dataset import query_dataset, store_dataset
from mesdash.msd.detection import DetectedLot
from mesdash.msd.upstream import LotUpstream

PREFIX = "msd-detail"
_STR, _NUM = pa.string(), pa.float64()
SCHEMA = pa.schema(
    [
        ("LOT_ID", _STR),
        ("CONTAINER_ID", _STR),
        ("DETECTION_DAY", _STR),
        ("WORKFLOW", _STR),
        ("PACKAGE", _STR),
        ("PJ_TYPE", _STR),
        ("INPUT_QTY", _NUM),
        ("LOSS_REASON", _STR),
        ("DEFECT_QTY", _NUM),
        ("DETECTION_MACHINES", _STR),
        ("UPSTREAM_MACHINES", _STR),
        ("WAFER_ROOTS", _STR),
    ]
)
COLUMNS = tuple(name.lower() for name in SCHEMA.names)


class DetailBuilder:
    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}

    def add(self, lot: DetectedLot, up: LotUpstream, reasons: frozenset[str] | None) -> None:
        base = (
            lot.container_name,
            lot.container_id,
            lot.detection_day,
            lot.workflow,
            lot.package,
            lot.pj_type,
            lot.input_qty,
        )
        tail = (
            ", ".join(sorted(lot.detection_machines.values())),
            ", ".join(sorted({name for _, name, _ in up.machines})),
            ", ".join(sorted(up.wafer_roots)),
        )
        kept: list[tuple[str | None, float]] = sorted(
            (r, q) for r, q in lot.reasons.items() if (reasons is None or r in reasons) and q > 0
        )
        for reason, qty in kept or [(None, 0.0)]:
            for name, value in zip(SCHEMA.names, (*base, reason, qty, *tail), strict=True):
                self.columns[name].append(value)

    def table(self) -> pa.Table:
        return pa.table(self.columns, schema=SCHEMA)


def store(query_id: str, table: pa.Table, quality: dict[str, Any], as_of: str) -> None:
    store_dataset(PREFIX, query_id, table, quality=quality, as_of=as_of)


def page(query_id: str, number: int, size: int, sort: str, descending: bool) -> dict[str, Any]:
    """One page of the detail, sorted by ``sort`` (a member of ``COLUMNS``), nulls last."""
    column = sort.upper()
    assert column in SCHEMA.names
    sql = (
        f"SELECT * FROM dataset ORDER BY {column} {'DESC' if descending else 'ASC'} NULLS LAST, "
        "LOT_ID, LOSS_REASON LIMIT :n OFFSET :o"
    )
    rows, info = query_dataset(PREFIX, query_id, sql, {"n": size, "o": (number - 1) * size})
    return {
        "query_id": query_id,
        "total": info.rows,
        "page": number,
        "page_size": size,
        "columns": list(COLUMNS),
        "data": [{k.lower(): v for k, v in row.items()} for row in rows],
    }


def csv(query_id: str) -> Iterator[bytes]:
    """The detail as CSV (checked now: an expired dataset is 410 before the first byte)."""
    names = ", ".join(f"{n} AS {n.lower()}" for n in SCHEMA.names)
    return dataset_csv(PREFIX, query_id, f"SELECT {names} FROM dataset ORDER BY LOT_ID, LOSS_REASON")
