"""Request and response models of the admin and health APIs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mesdash.core.validation import StrictFlag


class RestartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="why the restart is wanted (audit log)")
    manual_override: StrictFlag = Field(False, description="bypass a churn block (not the cooldown)")
    override_acknowledged: StrictFlag = Field(
        False, description="required with manual_override: the operator accepts the churn risk"
    )
    override_reason: str | None = Field(
        None, max_length=500, description="required with manual_override: why the block is overridden"
    )


class Recommendation(BaseModel):
    action: str = Field(
        description="observe | throttle | wait_for_half_open | controlled_restart | wait_for_cooldown | "
        "investigate_churn | check_warehouse | check_redis"
    )
    reason: str


class PolicyModel(BaseModel):
    state: Literal["allowed", "cooldown", "blocked"]
    cooldown_remaining_seconds: float
    cooldown_seconds: float
    churn_count: int
    churn_threshold: int
    churn_window_seconds: float
    churn_exceeded: bool
    last_restart_at: str | None


class Resilience(BaseModel):
    thresholds: dict[str, Any]
    alerts: list[dict[str, str]]
    restart_churn: dict[str, Any]
    policy_state: Literal["allowed", "cooldown", "blocked"]
    cooldown_remaining_seconds: float
    recovery_recommendation: Recommendation


class HealthPayload(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    checked_at: str
    services: dict[str, dict[str, Any]]
    degraded_reason: str | None
    circuit_breaker: dict[str, Any]
    pool: dict[str, Any]
    semaphore: dict[str, Any]
    resilience: Resilience


class WorkerModel(BaseModel):
    pid: int
    started_at: str
    rss_mb: float
    heartbeat_age_seconds: float | None
    inflight: int | None


class WorkerStatus(BaseModel):
    pid: int = Field(description="the process that answered")
    started_at: str = Field(description="when that process started")
    gunicorn: bool = Field(description="a gunicorn master is running (restart supported)")
    master_pid: int | None
    workers: list[WorkerModel]
    restart_history: list[dict[str, Any]] = Field(description="restarts within the churn window")
    pending_requests: int
    policy: PolicyModel
    recommendation: Recommendation


class RestartAccepted(BaseModel):
    status: Literal["accepted"]
    request_id: str
    override: bool
    policy: PolicyModel
    detail: str
