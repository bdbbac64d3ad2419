"""Request models of the defect analysis: one normalized ``AnalysisParams`` for both modes."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mesdash.core.validation import StrictFlag, check_date_range, normalize_ids
from mesdash.trace.schemas import InputType

MAX_RANGE_DAYS = 730
DEFAULT_STATION = "測試"  # final test (TMTT), the usual detection station
Direction = Literal["backward", "forward"]


class AnalysisParams(BaseModel):
    """What one analysis is over: a date window (date mode) and / or resolved lots."""

    model_config = ConfigDict(extra="forbid")
    station: str = DEFAULT_STATION
    direction: Direction = "backward"
    start_date: date | None = None
    end_date: date | None = None
    loss_reasons: list[str] = Field(default_factory=list)
    include_excluded_scrap: StrictFlag = False
    min_lots: int = Field(default=5, ge=1, le=10_000)
    container_ids: list[str] = Field(default_factory=list)

    @field_validator("loss_reasons", "container_ids")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        return normalize_ids(values)

    @field_validator("station")
    @classmethod
    def _station(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("station must not be empty")
        return value

    @model_validator(mode="after")
    def _window(self) -> AnalysisParams:
        if (self.start_date is None) != (self.end_date is None):
            raise ValueError("give both start_date and end_date, or neither")
        if self.start_date is not None and self.end_date is not None:
            check_date_range(self.start_date, self.end_date, MAX_RANGE_DAYS)
        elif not self.container_ids:
            raise ValueError("a date range is required unless lots are given")
        return self

    @property
    def mode(self) -> str:
        return "container" if self.container_ids else "date"

    @property
    def days(self) -> int:
        if self.start_date is None or self.end_date is None:
            return 0
        return (self.end_date - self.start_date).days + 1

    def hash_params(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ContainerAnalysisRequest(BaseModel):
    """``POST /api/mid-section-defect/analysis``: lots, work orders, wafer lots or serials."""

    model_config = ConfigDict(extra="forbid")
    input_type: InputType = "lot_id"
    values: list[str] = Field(min_length=1, max_length=50_000)
    station: str = DEFAULT_STATION
    direction: Direction = "backward"
    start_date: date | None = None
    end_date: date | None = None
    loss_reasons: list[str] = Field(default_factory=list)
    include_excluded_scrap: StrictFlag = False
    min_lots: int = Field(default=5, ge=1, le=10_000)


def split_csv(value: str | None) -> list[str]:
    """``a,b, c`` → ``["a", "b", "c"]`` (empty parts dropped)."""
    return normalize_ids((value or "").split(","))
