"""Request models of the query tool (validation failures answer 400 ``VALIDATION_ERROR``)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mesdash.core.validation import check_date_range, normalize_ids

MAX_EQUIPMENT_IDS = 50
MAX_LOT_VALUES = 100
MAX_PERIOD_DAYS = 730  # design: query tool ranges up to 730 days
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2999, 12, 31)  # plausible factory days only

QueryType = Literal["status_hours", "lots", "materials", "rejects", "jobs"]
LotInputType = Literal["lot_id", "work_order"]
OutputFormat = Literal["json", "csv"]


def _clean(values: list[str], field: str, most: int) -> list[str]:
    ids = normalize_ids(values)
    if not ids:
        raise ValueError(f"{field}: give at least one non-empty value")
    if len(ids) > most:
        raise ValueError(f"{field}: {len(ids)} given, at most {most}")
    return ids


class EquipmentPeriodRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    equipment_ids: list[str] = Field(
        description="machines (RESOURCEID / EQUIPMENTID), 1 to 50 after trimming and de-duplication",
        examples=[["4880168000000010"]],
    )
    start_date: date = Field(
        ge=FIRST_DAY, le=LAST_DAY, description="first factory day (07:30 to 07:30), inclusive"
    )
    end_date: date = Field(
        ge=FIRST_DAY, le=LAST_DAY, description="last factory day, inclusive; at most 730 days in all"
    )
    query_type: QueryType = "status_hours"

    @field_validator("equipment_ids")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        return _clean(values, "equipment_ids", MAX_EQUIPMENT_IDS)

    @model_validator(mode="after")
    def _range(self) -> EquipmentPeriodRequest:
        check_date_range(self.start_date, self.end_date, MAX_PERIOD_DAYS)
        return self

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    def hash_params(self) -> dict[str, Any]:
        return {
            "kind": "equipment-period",
            "equipment_ids": self.equipment_ids,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "query_type": self.query_type,
        }


class LotEquipmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_type: LotInputType = "lot_id"
    values: list[str] = Field(description="lot names or work orders, at most 100")
    workcenter_groups: list[str] = Field(
        default_factory=list, description="station groups to keep; empty: every group"
    )

    @field_validator("values")
    @classmethod
    def _values(cls, values: list[str]) -> list[str]:
        return _clean(values, "values", MAX_LOT_VALUES)

    @field_validator("workcenter_groups")
    @classmethod
    def _groups(cls, values: list[str]) -> list[str]:
        return normalize_ids(values)
