"""Response models of the web shell's API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TableSummary(BaseModel):
    table: str = Field(description="warehouse table name (schema dwh)")
    rows: int = Field(ge=0, description="row count")
    first: datetime | None = Field(None, description="earliest main timestamp; null without one")
    last: datetime | None = Field(None, description="latest main timestamp; null without one")


class WarehouseSummary(BaseModel):
    dialect: str = Field(description="duckdb | postgresql | oracle")
    as_of: datetime = Field(description="when the warehouse was read (UTC)")
    tables: list[TableSummary]
