"""Request and response models of the lineage API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LineageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    container_ids: list[str] = Field(
        description="container ids (CONTAINERID); trimmed, de-duplicated, empty values dropped",
        examples=[["48810380001cba48"]],
    )
    direction: Literal["backward", "forward"] = Field(
        "backward",
        description="backward: where the lots came from; forward: where they went",
    )


class LineageNode(BaseModel):
    container_id: str = Field(description="CONTAINERID, or wafer:{FIRSTNAME} for a wafer lot")
    container_name: str
    mfgorder_name: str | None
    wafer_lot: str | None
    node_type: Literal["WAFER", "GA", "GC", "GD", "LOT", "UNKNOWN"]


class LineageEdge(BaseModel):
    from_cid: str = Field(description="upstream node")
    to_cid: str = Field(description="downstream node")
    edge_type: Literal["split_from", "merge_source", "wafer_origin", "gd_rework_source"]


class MissingLink(BaseModel):
    child_cid: str
    parent_cid: str
    edge_type: Literal["split_from", "merge_source"]


class LineageDiagnostics(BaseModel):
    cycles: list[list[str]] = Field(description="cycles met (self-references included)")
    missing_parents: list[MissingLink] | None = Field(
        None, description="backward: an edge names a container the warehouse does not have"
    )
    missing_children: list[MissingLink] | None = Field(
        None, description="forward: an edge names a container the warehouse does not have"
    )
    depth_capped: list[str] = Field(description="seeds whose closure the depth cap cut")
    missing_seeds: list[str] = Field(description="requested ids the warehouse does not have")
    max_depth: int


class LineageResult(BaseModel):
    """Backward results carry ``ancestors`` and ``seed_roots``; forward results carry
    ``descendants`` and ``leaf_serials``. Every list is sorted."""

    direction: Literal["backward", "forward"]
    ancestors: dict[str, list[str]] | None = None
    descendants: dict[str, list[str]] | None = None
    seed_roots: dict[str, list[str]] | None = Field(None, description="seed → root lot names")
    leaf_serials: dict[str, list[str]] | None = Field(
        None, description="leaf → finished-goods serials (FINISHEDNAME)"
    )
    nodes: dict[str, LineageNode]
    edges: list[LineageEdge]
    diagnostics: LineageDiagnostics
