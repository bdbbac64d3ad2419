"""Request pieces shared by the period reports: a factory-day range with a limit, list inputs.

``IdList`` accepts a JSON list or a comma-separated string, trims, de-duplicates and drops
empty values (order kept). ``DateRange`` subclasses set ``MAX_RANGE_DAYS``; a longer or
reversed range is a validation error (400), never a silent truncation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from mesdash.core.batch import Chunk, decompose_by_time_range
from mesdash.core.validation import check_date_range, normalize_ids
from mesdash.settings import get_settings


def _id_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of strings or a comma-separated string")
    # a query string may repeat the parameter and comma-join values: accept both
    parts = [p for v in value for p in (v.split(",") if isinstance(v, str) else [v])]
    return tuple(normalize_ids(parts))


IdList = Annotated[tuple[str, ...], BeforeValidator(_id_list)]


def choice_list(allowed: tuple[str, ...], field: str, *, required: bool = False) -> Any:
    """A validator for a list of values from ``allowed`` (comma-separated string or list);
    ``required``: an empty list is an error."""

    def check(value: Any) -> tuple[str, ...]:
        values = _id_list(value)
        if required and not values:
            raise ValueError(f"{field} needs at least one of {', '.join(allowed)}")
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ValueError(f"{field} must be among {', '.join(allowed)}; got {', '.join(unknown)}")
        return values

    return BeforeValidator(check)


class DateRange(BaseModel):
    """Inclusive factory days ``[start_date, end_date]`` of at most ``MAX_RANGE_DAYS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    MAX_RANGE_DAYS: ClassVar[int] = 730

    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _range(self) -> DateRange:
        check_date_range(self.start_date, self.end_date, self.MAX_RANGE_DAYS)
        return self

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


def plan_grain(days: int) -> int:
    """Chunk size of a range's plan: one chunk up to ``BATCH_QUERY_TIME_THRESHOLD_DAYS``,
    31-day chunks above (the grain belongs in a query id: chunk i of another plan shape
    is another range)."""
    return 31 if days > get_settings().batch_query_time_threshold_days else days


def time_plan(query: DateRange) -> list[Chunk]:
    return decompose_by_time_range(query.start_date, query.end_date, plan_grain(query.days))


QueryFn = Callable[[Chunk, int | None], pa.Table]
Wrap = Callable[[QueryFn], QueryFn]  # decorates a report's chunk query (e.g. to count progress)


def same(fn: QueryFn) -> QueryFn:
    return fn
