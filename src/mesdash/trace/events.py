"""EventFetcher: per-lot events in seven domains, batched, streamed, cached.

Every batch of ≤ 1000 ids streams through ``read_sql_df_slow_iter`` (dedicated connection,
slow-query slot, 60 s timeout) and is grouped by CONTAINERID as it arrives — no DataFrame
of the whole result, no fetchall. ``fetch_events`` materializes (guarded by
``EVENT_FETCHER_MAX_TOTAL_ROWS``) and goes through the two-level cache; the iterator and
the Parquet writer are the paths large traces use, with no row cap.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mesdash.core.cache import LayeredCache, cache_key
from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import MesdashError
from mesdash.core.validation import normalize_ids
from mesdash.settings import Settings, get_settings

log = logging.getLogger(__name__)

Row = dict[str, Any]
Grouped = dict[str, list[Row]]
ID_BATCH_SIZE = 1000
JOB_WINDOW_DAYS = 30  # a job names lots that ran on its machine within this many days


def _hold_fields(rows: list[Row], as_of: datetime) -> None:
    """HOLD_STATUS (HOLD while the release columns are NULL) and HOURS on hold until the
    release, or until the data was read for holds still open."""
    for row in rows:
        released = row.get("RELEASETXNDATE")
        held = row.get("HOLDTXNDATE")
        row["HOLD_STATUS"] = "HOLD" if released is None else "RELEASED"
        end = released or as_of
        row["HOLD_HOURS"] = round((end - held).total_seconds() / 3600, 2) if held else None


@dataclass(frozen=True)
class Domain:
    sql: str
    id_column: str
    ttl: int = 300
    derive: Callable[[list[Row], datetime], None] | None = None
    params: dict[str, Any] = field(default_factory=dict)


DOMAINS: dict[str, Domain] = {
    "history": Domain("events/history", "h.CONTAINERID"),
    "materials": Domain("events/materials", "m.CONTAINERID"),
    "rejects": Domain("events/rejects", "r.CONTAINERID"),
    "holds": Domain("events/holds", "h.CONTAINERID", ttl=180, derive=_hold_fields),
    "jobs": Domain("events/jobs", "l.CONTAINERID", ttl=180, params={"window_days": JOB_WINDOW_DAYS}),
    "upstream_history": Domain("events/upstream_history", "h.CONTAINERID"),
    "downstream_rejects": Domain("events/downstream_rejects", "r.CONTAINERID"),
}


def domain_spec(domain: str) -> Domain:
    try:
        return DOMAINS[domain]
    except KeyError:
        raise ValueError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}") from None


def _iso(rows: list[Row]) -> None:
    """Datetimes as ISO 8601 strings: what the cache gives back, so a hit equals a miss."""
    for row in rows:
        for k, v in row.items():
            if isinstance(v, datetime | date):
                row[k] = v.isoformat()


@dataclass
class _Progress:
    """What a materializing fetch has seen: rows, failed id ranges, truncation."""

    limit: int
    rows: int = 0
    truncated: bool = False
    failed: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, n: int) -> int:
        """How many of ``n`` new rows still fit under the limit."""
        with self.lock:
            room = max(0, self.limit - self.rows)
            kept = min(n, room)
            self.rows += kept
            if kept < n:
                self.truncated = True
            return kept

    def quality(self, as_of: datetime) -> dict[str, Any]:
        reasons = []
        status = "complete"
        if self.failed:
            status = "partial"
            reasons.append(f"{len(self.failed)} batch(es) failed")
        if self.truncated:
            status = "truncated"
            reasons.append(f"row limit {self.limit} reached")
        return {
            "status": status,
            "reasons": reasons,
            "observed_rows": self.rows,
            "failed_ranges": self.failed,
            "as_of": as_of.isoformat(timespec="seconds"),
        }


class EventFetcher:
    def __init__(
        self,
        warehouse: Warehouse,
        cache: LayeredCache | None = None,
        settings: Settings | None = None,
        id_batch_size: int = ID_BATCH_SIZE,
    ) -> None:
        self.warehouse = warehouse
        self.id_batch_size = id_batch_size
        self.settings = settings or get_settings()
        self.cache = cache if cache is not None else LayeredCache("")
        self.timeout = self.settings.event_fetcher_batch_timeout_seconds

    # --------------------------------------------------------------- one batch --------------
    def batch_rows(self, domain: str, ids: Sequence[str], as_of: datetime) -> Iterator[list[Row]]:
        """The rows of one id batch, in fetchmany-sized lists, derived columns added."""
        spec = DOMAINS[domain]
        qb = QueryBuilder(in_batch_size=self.settings.oracle_in_batch_size)
        sql = self.warehouse.sql(spec.sql, cid_filter=qb.in_condition(spec.id_column, ids))
        params = {**qb.params, **spec.params}
        for columns, rows in self.warehouse.read_sql_df_slow_iter(
            sql, params, timeout_seconds=self.timeout, slot_wait_seconds=self.timeout
        ):
            dicts = [dict(zip(columns, row, strict=True)) for row in rows]
            if spec.derive:
                spec.derive(dicts, as_of)
            yield dicts

    def id_batches(self, ids: list[str], size: int | None = None) -> list[list[str]]:
        size = size or self.id_batch_size
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    # ----------------------------------------------------------- streaming paths ------------
    def fetch_events_iter(
        self, container_ids: Sequence[str], domain: str, batch_size: int | None = None
    ) -> Iterator[Grouped]:
        """Grouped batches ``{cid: [row, …]}``, one per fetched row batch; no row cap."""
        domain_spec(domain)
        ids = normalize_ids(container_ids)
        as_of = datetime.now()
        for id_batch in self.id_batches(ids, batch_size):
            for rows in self.batch_rows(domain, id_batch, as_of):
                grouped: Grouped = defaultdict(list)
                for row in rows:
                    grouped[row["CONTAINERID"]].append(row)
                yield dict(grouped)

    def fetch_events_to_parquet(
        self, container_ids: Sequence[str], domain: str, path: Path | str
    ) -> dict[str, Any]:
        """Write the domain's rows to one Parquet file incrementally (``.tmp`` then rename);
        returns ``{rows, path}``. Memory holds one fetched batch at a time."""

        def rows() -> Iterator[list[Row]]:
            for grouped in self.fetch_events_iter(container_ids, domain):
                yield [row for group in grouped.values() for row in group]

        total = write_rows_parquet(rows(), Path(path))
        return {"rows": total, "path": str(path) if total else None}

    # ---------------------------------------------------------- materializing path ----------
    def fetch_events(
        self, container_ids: Sequence[str], domain: str, *, allow_partial: bool = False
    ) -> dict[str, Any]:
        """``{records_by_cid, quality}`` through the two-level cache (never for more than
        ``EVENT_FETCHER_CACHE_SKIP_CID_THRESHOLD`` ids, never for incomplete results)."""
        spec = domain_spec(domain)
        ids = normalize_ids(container_ids)
        threshold = self.settings.event_fetcher_cache_skip_cid_threshold
        write = len(ids) <= threshold
        if not write:
            log.warning(
                "event cache skipped: domain=%s cid_count=%d threshold=%d", domain, len(ids), threshold
            )
        key = cache_key("evt", domain, {"ids": ids, "partial": allow_partial})
        return self.cache.get_or_compute(
            key,
            lambda: self._compute(ids, domain, allow_partial),
            spec.ttl,
            cacheable=lambda result: result["quality"]["status"] == "complete",
            write=write,
        )

    def _compute(self, ids: list[str], domain: str, allow_partial: bool) -> dict[str, Any]:
        as_of = datetime.now()
        progress = _Progress(self.settings.event_fetcher_max_total_rows)
        records: Grouped = defaultdict(list)
        lock = threading.Lock()

        def run(id_batch: list[str]) -> None:
            try:
                for rows in self.batch_rows(domain, id_batch, as_of):
                    kept = progress.take(len(rows))
                    rows = rows[:kept]
                    _iso(rows)
                    with lock:
                        for row in rows:
                            records[row["CONTAINERID"]].append(row)
                    if progress.truncated:
                        return
            except MesdashError as exc:
                if not allow_partial:
                    raise
                log.warning("event batch failed: domain=%s ids=%d code=%s", domain, len(id_batch), exc.code)
                with progress.lock:
                    progress.failed.append(
                        {"first_id": id_batch[0], "last_id": id_batch[-1], "count": len(id_batch),
                         "code": exc.code}
                    )

        batches = self.id_batches(ids)
        workers = max(1, min(self.settings.event_fetcher_max_workers, len(batches)))
        if workers == 1:
            for batch in batches:
                run(batch)
                if progress.truncated:
                    break
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"evt-{domain}") as pool:
                for future in [pool.submit(run, b) for b in batches]:
                    future.result()
        return {"records_by_cid": dict(records), "quality": progress.quality(as_of)}


def write_rows_parquet(chunks: Iterable[list[Row]], target: Path) -> int:
    """Write row chunks to one Parquet file incrementally (``.tmp`` then rename); returns the
    row count. No file when there are no rows. Memory holds one chunk at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = target.with_suffix(target.suffix + ".tmp")
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    total = 0
    try:
        for rows in chunks:
            if not rows:
                continue
            table = pa.Table.from_pylist(rows)
            if writer is None:
                schema = _settle_nulls(table.schema)
                writer = pq.ParquetWriter(tmp, schema)
            assert schema is not None
            writer.write_table(table.select(schema.names).cast(schema))
            total += len(rows)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:
        return 0
    writer.close()
    tmp.replace(target)
    return total


def _settle_nulls(schema: Any) -> Any:
    """A column that was all NULL in the first batch becomes a string column: Parquet needs
    one schema for every batch, and later batches cast to it (a number to its text)."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    )
