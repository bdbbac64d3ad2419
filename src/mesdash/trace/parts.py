"""A trace job's results on disk: Parquet part files plus a manifest of finished batches.

``{spool}/trace/{job_id}/part-{domain}-{batch:06d}.parquet`` holds one id batch of one
domain (written to ``.tmp`` and renamed); ``manifest.json`` (also replaced atomically) lists
the finished batches in order, so a stream can follow a running job and a retry resumes
after the last finished batch. ``ids.json`` keeps the lineage-expanded container ids.
A domain's first id batch is small (its rows reach a stream early), the rest are full; the
manifest keeps both sizes, so a retry cuts the ids exactly as the first attempt did.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

MANIFEST = "manifest.json"
IDS = "ids.json"


def part_name(domain: str, batch: int) -> str:
    return f"part-{domain}-{batch:06d}.parquet"


def batch_bounds(count: int, first: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each id batch over ``count`` ids: ``first`` ids, then ``size`` each."""
    bounds: list[tuple[int, int]] = []
    start, step = 0, min(first, size)
    while start < count:
        bounds.append((start, min(start + step, count)))
        start, step = start + step, size
    return bounds


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)


@dataclass
class Manifest:
    """What a trace job has finished: per domain, its batches in order."""

    folder: Path
    domains: list[str]
    container_count: int
    batch_count: int  # id batches per domain
    as_of: str
    first_batch_size: int  # ids in each domain's first batch ...
    id_batch_size: int  # ... and in every later one
    parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quality: dict[str, Any] | None = None

    # ----------------------------------------------------------------- persistence ----
    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        try:
            data = orjson.loads((folder / MANIFEST).read_bytes())
        except FileNotFoundError:
            return None
        if "id_batch_size" not in data:
            return None  # written before batch sizes were kept: the job starts afresh
        return cls(folder=folder, **data)

    def save(self) -> None:
        data = {
            "domains": self.domains,
            "container_count": self.container_count,
            "batch_count": self.batch_count,
            "as_of": self.as_of,
            "first_batch_size": self.first_batch_size,
            "id_batch_size": self.id_batch_size,
            "parts": self.parts,
            "quality": self.quality,
        }
        _write_atomic(self.folder / MANIFEST, orjson.dumps(data))

    @staticmethod
    def save_ids(folder: Path, ids: list[str]) -> None:
        _write_atomic(folder / IDS, orjson.dumps(ids))

    @staticmethod
    def load_ids(folder: Path) -> list[str] | None:
        try:
            return list(orjson.loads((folder / IDS).read_bytes()))
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------- batches ----
    def id_batches(self, ids: list[str]) -> list[list[str]]:
        """The job's id batches, the same on every attempt (the sizes are the manifest's)."""
        return [ids[a:b] for a, b in batch_bounds(len(ids), self.first_batch_size, self.id_batch_size)]

    def done(self, domain: str) -> list[dict[str, Any]]:
        return self.parts.setdefault(domain, [])

    def add(self, domain: str, rows: int, failed: dict[str, Any] | None = None) -> None:
        batch = len(self.done(domain))
        file = part_name(domain, batch) if rows else None
        self.done(domain).append({"batch": batch, "rows": rows, "file": file, "failed": failed})

    def domain_finished(self, domain: str) -> bool:
        return len(self.done(domain)) >= self.batch_count

    def counts(self) -> tuple[int, int]:
        """(finished batches, failed batches) over every domain."""
        entries = [p for d in self.domains for p in self.done(d)]
        failed = sum(1 for p in entries if p["failed"])
        return len(entries) - failed, failed

    def rows(self, domain: str) -> int:
        return sum(int(p["rows"]) for p in self.done(domain))

    def summary_quality(self) -> dict[str, Any]:
        failed = [p["failed"] for d in self.domains for p in self.done(d) if p["failed"]]
        return {
            "status": "partial" if failed else "complete",
            "reasons": [f"{len(failed)} batch(es) failed"] if failed else [],
            "observed_rows": sum(self.rows(d) for d in self.domains),
            "failed_ranges": failed,
            "as_of": self.as_of,
        }


def stream_chunks(path: Path, size: int) -> Iterator[Any]:
    """A part file as ``pyarrow.Table`` chunks of exactly ``size`` rows (the last one
    shorter), whatever its row groups — so record numbering depends on row counts only.
    The file is opened by this call (FileNotFoundError here, not at the first chunk), and
    the chunks read from the open file even if it is removed meanwhile."""
    import pyarrow.parquet as pq

    return _exact_chunks(pq.ParquetFile(path), size)


def _exact_chunks(parquet: Any, size: int) -> Iterator[Any]:
    import pyarrow as pa

    buffer: list[Any] = []
    held = 0
    for batch in parquet.iter_batches(batch_size=size):
        buffer.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(buffer)
            yield table.slice(0, size)
            rest = table.slice(size)
            buffer, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(buffer)


def chunks_in(rows: int, size: int) -> int:
    return math.ceil(rows / size) if rows else 0


def read_rows(folder: Path, parts: list[dict[str, Any]], offset: int, limit: int) -> list[dict[str, Any]]:
    """Rows ``offset … offset+limit`` of one domain across its part files."""
    import pyarrow.parquet as pq

    out: list[dict[str, Any]] = []
    start = 0
    for part in parts:
        rows = int(part["rows"])
        if rows and start + rows > offset and len(out) < limit:
            skip = max(0, offset - start)
            table = pq.read_table(folder / part["file"])
            out.extend(table.slice(skip, limit - len(out)).to_pylist())
        start += rows
        if len(out) >= limit:
            break
    return out
