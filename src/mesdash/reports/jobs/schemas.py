"""Equipment-jobs requests: 1–50 machines (RESOURCEID) over ≤ 730 factory days, and the view
selections (machines, statuses, models) that narrow the cached dataset."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mesdash.reports.params import DateRange, IdList

MAX_MACHINES = 50


class JobQuery(DateRange):
    machines: IdList  # RESOURCEID

    @field_validator("machines")
    @classmethod
    def _count(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not 1 <= len(value) <= MAX_MACHINES:
            raise ValueError(f"choose 1 to {MAX_MACHINES} machines; got {len(value)}")
        return value

    def hash_params(self) -> dict[str, Any]:
        return {"kind": "job-query", "v": 1, **self.model_dump(mode="json")}


class JobSelection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    machines: IdList = ()  # RESOURCENAME, a clicked bar
    statuses: IdList = ()
    models: IdList = ()


class JobView(JobSelection):
    query_id: str

    def selection(self) -> JobSelection:
        return JobSelection(**self.model_dump(include=set(JobSelection.model_fields)))


class JobListView(JobView):
    page: int = Field(1, ge=1)
    page_size: int = Field(100, ge=1, le=1000)
    sort: str = "-CREATEDATE"


class BreakdownView(JobView):
    dimension: str = "machine"
