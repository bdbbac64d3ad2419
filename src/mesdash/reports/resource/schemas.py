"""Equipment-history requests: the primary query (range ≤ 730 days, machine filters, strict
boolean flags) and the view selections (granularity, machines, one period)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mesdash.core.validation import StrictFlag
from mesdash.reports.params import DateRange, IdList

Granularity = Literal["day", "week", "month", "year"]


class ResourceQuery(DateRange):
    """Machines (equipment only) narrowed by group, family, name, location and flags; a flag
    left out does not filter, ``true`` keeps flagged machines, ``false`` the others."""

    workcenter_groups: IdList = ()
    families: IdList = ()
    machines: IdList = ()  # RESOURCENAME
    locations: IdList = ()
    is_production: StrictFlag | None = None
    is_key: StrictFlag | None = None
    is_monitor: StrictFlag | None = None

    def hash_params(self) -> dict[str, Any]:
        return {"kind": "resource-history", "v": 1, **self.model_dump(mode="json")}


class ResourceRequest(ResourceQuery):
    """``POST /api/resource-history/query``: the query and the first granularity to show."""

    granularity: Granularity = "day"

    def query(self) -> ResourceQuery:
        return ResourceQuery(**self.model_dump(exclude={"granularity"}))


class ResourceSelection(BaseModel):
    """What the views show: period size, and cross-filters (machines, one period)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granularity: Granularity = "day"
    machines: IdList = ()
    period: date | None = None  # first day of a clicked period


class ResourceView(ResourceSelection):
    query_id: str

    def selection(self) -> ResourceSelection:
        return ResourceSelection(**self.model_dump(include=set(ResourceSelection.model_fields)))


class ResourceHeatmapView(ResourceView):
    metric: Literal["ou", "availability", "oee", "yield"] = "ou"


class ResourceDetailView(ResourceView):
    page: int = Field(1, ge=1)
    page_size: int = Field(100, ge=1, le=1000)
