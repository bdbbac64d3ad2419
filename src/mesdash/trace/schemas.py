"""Request models of the trace routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mesdash.trace.events import DOMAINS

DomainName = Literal[
    "history", "materials", "rejects", "holds", "jobs", "upstream_history", "downstream_rejects"
]
assert set(DomainName.__args__) == set(DOMAINS)  # type: ignore[attr-defined]

InputType = Literal["lot_id", "work_order", "wafer_lot", "serial_number", "gd_lot_id", "gd_work_order"]


class SeedResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_type: InputType
    values: list[str] = Field(min_length=1, max_length=10_000)


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    container_ids: list[str] = Field(min_length=1)
    domains: list[DomainName] = Field(min_length=1)
    lineage: Literal["none", "backward", "forward", "both"] = "none"


class GenealogyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    container_ids: list[str] = Field(min_length=1)
