"""Hold-history requests: the primary query (a range ≤ 730 days) and the view selections
(hold type, record types, a clicked day, reasons) that narrow the cached dataset."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mesdash.reports.params import DateRange, IdList, choice_list
from mesdash.settings import get_settings

HoldType = Literal["quality", "non-quality", "all"]
RECORD_TYPES = ("new", "on_hold", "released")
RecordTypes = Annotated[tuple[str, ...], choice_list(RECORD_TYPES, "record_type", required=True)]


def quality_reasons() -> list[str]:
    """``HOLD_QUALITY_REASONS``: the hold reasons that make a quality hold."""
    return [r.strip() for r in get_settings().hold_quality_reasons.split(",") if r.strip()]


class HoldQuery(DateRange):
    """The primary query: every hold created in the range, plus those carried into it."""

    def hash_params(self) -> dict[str, Any]:
        return {"kind": "hold-history", "v": 1, **self.model_dump(mode="json")}


class HoldSelection(BaseModel):
    """What the views show of a dataset: hold type, record types, one day, reasons."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_type: HoldType = "all"
    record_type: RecordTypes = ("new",)
    day: date | None = None  # a clicked trend day narrows pareto, durations and list
    reasons: IdList = ()


class HoldRequest(HoldQuery):
    """``POST /api/hold-history/query``: the range and the first selection to show."""

    hold_type: HoldType = "all"
    record_type: RecordTypes = ("new",)

    def query(self) -> HoldQuery:
        return HoldQuery(start_date=self.start_date, end_date=self.end_date)

    def selection(self) -> HoldSelection:
        return HoldSelection(hold_type=self.hold_type, record_type=self.record_type)


class HoldView(HoldSelection):
    """Query string of a view: the dataset and the selection."""

    query_id: str

    def selection(self) -> HoldSelection:
        return HoldSelection(**self.model_dump(include=set(HoldSelection.model_fields)))


class HoldListView(HoldView):
    page: int = Field(1, ge=1)
    page_size: int = Field(100, ge=1, le=1000)
    sort: str = "-HOLDTXNDATE"
