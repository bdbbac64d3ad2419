"""The factory day: day D runs [D 07:30, D+1 07:30) in every report, bucket and chunk."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

DAY_START = time(7, 30)
SHIFT = timedelta(hours=7, minutes=30)


def day_start(day: date) -> datetime:
    return datetime.combine(day, DAY_START)


def day_of(ts: datetime) -> date:
    """The factory day a timestamp belongs to (07:29 belongs to the previous day)."""
    return (ts - SHIFT).date()


def range_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Half-open timestamp bounds of the inclusive factory-day range [start, end]."""
    return day_start(start), day_start(end + timedelta(days=1))
