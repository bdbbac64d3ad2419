"""Query plans: a long request cut into chunks the warehouse answers one at a time.

Time chunks are closed ranges of inclusive factory days ``[start, end]``; the next chunk
starts the day after, the last may be short — no gap, no overlap. Id chunks are batches
of at most ``batch_size`` ids in input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mesdash.core.factory_day import range_bounds


@dataclass(frozen=True)
class Chunk:
    """One piece of a plan: a factory-day range or a batch of ids."""

    index: int
    start: date | None = None
    end: date | None = None
    ids: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How a failed chunk is named in ``failed_ranges``."""
        if self.start is not None and self.end is not None:
            return f"{self.start.isoformat()}..{self.end.isoformat()}"
        return f"ids[{self.index}]:{len(self.ids)}"

    def bounds(self) -> tuple[datetime, datetime]:
        """Half-open timestamp bounds [start day 07:30, end day + 1 07:30) of a time chunk."""
        if self.start is None or self.end is None:
            raise ValueError("an id chunk has no time bounds")
        return range_bounds(self.start, self.end)

    def is_closed(self, today: date) -> bool:
        """A time chunk that ends before today's factory day: its data no longer changes."""
        return self.end is not None and self.end < today

    def params(self) -> dict[str, Any]:
        """The chunk as plain data (hashing, logs)."""
        if self.start is not None and self.end is not None:
            return {"start": self.start.isoformat(), "end": self.end.isoformat()}
        return {"ids": list(self.ids)}


def decompose_by_time_range(start_date: date, end_date: date, grain_days: int = 31) -> list[Chunk]:
    """Closed chunks of at most ``grain_days`` factory days covering [start_date, end_date]."""
    if grain_days < 1:
        raise ValueError("grain_days must be at least 1")
    if end_date < start_date:
        raise ValueError("end_date is before start_date")
    chunks: list[Chunk] = []
    current = start_date
    while current <= end_date:
        last = min(current + timedelta(days=grain_days - 1), end_date)
        chunks.append(Chunk(len(chunks), start=current, end=last))
        current = last + timedelta(days=1)
    return chunks


def decompose_by_ids(ids: Iterable[str], batch_size: int = 1000) -> list[Chunk]:
    """Batches of at most ``batch_size`` ids, trimmed, de-duplicated, order kept."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    unique = list(dict.fromkeys(s for s in (str(i).strip() for i in ids) if s))
    return [
        Chunk(n, ids=tuple(unique[pos : pos + batch_size]))
        for n, pos in enumerate(range(0, len(unique), batch_size))
    ]


def plan_params(chunks: Sequence[Chunk]) -> dict[str, Any]:
    """The plan as hashable data, in chunk order (the default query hash basis)."""
    return {"chunks": [c.params() for c in chunks]}
