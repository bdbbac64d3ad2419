"""Pieces shared by the period reports: requests (a factory-day range with a limit, list
inputs, sort and paging), the time plan and build of a range's dataset, the envelope of a view.

``IdList`` accepts a JSON list or a comma-separated string, trims, de-duplicates and drops
empty values (order kept). ``DateRange`` subclasses set ``MAX_RANGE_DAYS``; a longer or
reversed range is a validation error (400), never a silent truncation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Annotated, Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from mesdash.core.batch import Chunk, decompose_by_time_range
from mesdash.core.batch.dataset import DatasetInfo, build_dataset
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import ValidationFailed
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


def build_range(
    prefix: str,
    query_id: str,
    query: DateRange,
    fn: QueryFn,
    wh: Warehouse,
    *,
    schema: pa.Schema,
    now: Callable[[], datetime],
    parallel: int,
    wrap: Wrap | None,
    ttl: int | None = None,
    **extra: Any,
) -> DatasetInfo:
    """Run ``fn`` over ``query``'s time plan (cached chunks are reused; ``wrap`` decorates
    ``fn``, e.g. to count a job's progress) and keep the dataset under ``query_id``; its
    ``extra`` holds the range's days and ``extra``."""
    days = {"start_date": query.start_date.isoformat(), "end_date": query.end_date.isoformat()}
    return build_dataset(
        prefix,
        query_id,
        time_plan(query),
        (wrap or same)(fn),
        schema=schema,
        parallel=parallel,
        bulkhead=wh.bulkhead,
        now=now,
        extra={**days, **extra},
        ttl=ttl,
    )


def dataset_fields(info: DatasetInfo) -> dict[str, Any]:
    """What a primary query answers about its kept dataset (inline, or as a job's result)."""
    return {
        "query_id": info.query_id,
        "rows": info.rows,
        "chunks": info.chunks,
        "spilled": info.spilled,
        "as_of": info.as_of,
        "quality": info.quality,
    }


def envelope(
    info: DatasetInfo,
    sel: BaseModel | None = None,
    *,
    range_keys: tuple[str, ...] = ("start_date", "end_date"),
    **body: Any,
) -> dict[str, Any]:
    """A view's answer: its dataset, the dataset's range, the selection shown, then ``body``."""
    return {
        "query_id": info.query_id,
        "as_of": info.as_of,
        "quality": info.quality,
        "range": {k: info.extra[k] for k in range_keys},
        **({"selection": sel.model_dump(mode="json")} if sel is not None else {}),
        **body,
    }


def order_by(sort: str, sortable: Collection[str], tie_break: str) -> str:
    """``-A,B`` → ``A DESC, B ASC, <tie_break>``: columns from the allow-list only (anything
    else is a 400), then the tie-breaker so that pages never overlap."""
    parts = []
    for token in (t.strip() for t in sort.split(",") if t.strip()):
        column, desc = token.lstrip("-+").upper(), token.startswith("-")
        if column not in sortable:
            raise ValidationFailed(f"cannot sort by {column!r}")
        parts.append(f"{column} {'DESC' if desc else 'ASC'}")
    return ", ".join([*parts, tie_break])


def check_page(page: int, page_size: int, max_page_size: int) -> None:
    """A 1-based page of at most ``max_page_size`` rows, else a 400."""
    if page < 1 or not 1 <= page_size <= max_page_size:
        raise ValidationFailed(f"page must be ≥ 1 and page_size within 1..{max_page_size}")


def row_window(page: int, page_size: int) -> dict[str, int]:
    """The ``first_row`` / ``last_row`` binds (1-based, inclusive) of a page."""
    first = (page - 1) * page_size + 1
    return {"first_row": first, "last_row": first + page_size - 1}
