"""Input parsers shared by every slice: identifier lists, strict booleans, date ranges."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def parse_strict_bool(value: Any) -> bool:
    """true/false/1/0/yes/no/y/n/on/off (any case) or JSON booleans; anything else fails."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError("must be one of true/false/1/0/yes/no/y/n/on/off")


StrictFlag = Annotated[bool, BeforeValidator(parse_strict_bool)]


def normalize_ids(values: Iterable[Any]) -> list[str]:
    """Trimmed, de-duplicated, empty values dropped, order kept."""
    seen: dict[str, None] = {}
    for value in values:
        if value is None:
            continue
        text = str(value).strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def check_date_range(start: date, end: date, max_days: int) -> None:
    """Inclusive factory days; raises ValueError with a clear message."""
    if end < start:
        raise ValueError("end_date is before start_date")
    days = (end - start).days + 1
    if days > max_days:
        raise ValueError(f"date range is {days} days; the limit is {max_days}")
