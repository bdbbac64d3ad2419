"""Reject-history request: a factory-day range (≤ 365 days) *or* lots (lot ids, work orders
or wafer lots, with wildcards), list filters, and the three policy flags."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mesdash.core.validation import StrictFlag, check_date_range, normalize_ids

MAX_RANGE_DAYS = 365
MAX_CONTAINER_INPUTS = 10_000
ContainerType = Literal["lot_id", "work_order", "wafer_lot"]


class RejectQuery(BaseModel):
    """The reject-history primary query: date mode (``start_date``/``end_date``) or container
    mode (``container_type``/``containers``), never both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_date: date | None = None
    end_date: date | None = None
    container_type: ContainerType | None = None
    containers: tuple[str, ...] = Field(default=(), max_length=MAX_CONTAINER_INPUTS)
    packages: tuple[str, ...] = ()  # PRODUCTLINENAME
    pj_types: tuple[str, ...] = ()
    pj_functions: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # LOSSREASONNAME
    include_excluded_scrap: StrictFlag = False
    exclude_material_scrap: StrictFlag = True
    exclude_pb_diode: StrictFlag = True

    @field_validator("containers", "packages", "pj_types", "pj_functions", "reasons", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        return tuple(normalize_ids(value))

    @model_validator(mode="after")
    def _mode(self) -> RejectQuery:
        dated = self.start_date is not None or self.end_date is not None
        by_lots = self.container_type is not None or bool(self.containers)
        if dated == by_lots:
            raise ValueError("give either start_date and end_date, or container_type and containers")
        if dated:
            if self.start_date is None or self.end_date is None:
                raise ValueError("date mode needs both start_date and end_date")
            check_date_range(self.start_date, self.end_date, MAX_RANGE_DAYS)
        elif self.container_type is None or not self.containers:
            raise ValueError("container mode needs container_type and at least one container")
        return self

    @property
    def mode(self) -> Literal["date", "container"]:
        return "date" if self.start_date is not None else "container"

    @property
    def days(self) -> int:
        """Factory days of a date-mode query (0 in container mode)."""
        if self.start_date is None or self.end_date is None:
            return 0
        return (self.end_date - self.start_date).days + 1

    def hash_params(self) -> dict[str, Any]:
        """The normalized request as plain data (the query id's basis)."""
        return {"kind": "reject-history", **self.model_dump(mode="json")}
