"""Restart requests from the admin API: validate, check the policy, audit, hand over to the
watchdog (a request file in the run directory)."""

from __future__ import annotations

from typing import Any

from mesdash.admin.audit import AuditLog
from mesdash.admin.auth import Principal
from mesdash.admin.policy import RestartPolicy
from mesdash.admin.schemas import RestartRequest
from mesdash.admin.workers import master_pid, write_request
from mesdash.core.resilience.errors import MesdashError, ValidationFailed
from mesdash.settings import Settings

ACTION = "worker_restart"


class RestartCooldown(MesdashError):
    code = "RESTART_COOLDOWN"


class RestartBlocked(MesdashError):
    code = "RESTART_POLICY_BLOCKED"


class RestartUnsupported(MesdashError):
    code = "RESTART_UNSUPPORTED"


def audit_log(settings: Settings) -> AuditLog:
    return AuditLog(settings.audit_log_path)


def request_restart(
    settings: Settings, who: Principal, body: RestartRequest, client: str | None
) -> dict[str, Any]:
    """Accept a restart (returns the 202 body) or raise 400 / 409 / 429; audited either way."""
    audit = audit_log(settings)
    override = body.manual_override
    override_reason = (body.override_reason or "").strip()
    context: dict[str, Any] = {
        "actor": who.label,
        "reason": body.reason,
        "manual_override": override,
        "override_acknowledged": body.override_acknowledged,
        "override_reason": override_reason or None,
        "client": client,
    }
    if override and (not body.override_acknowledged or not override_reason):
        audit.write(ACTION, "invalid", **context)
        raise ValidationFailed(
            "manual_override needs override_acknowledged=true and a non-empty override_reason"
        )
    if master_pid(settings.run_path) is None:
        audit.write(ACTION, "unsupported", **context)
        raise RestartUnsupported(
            "no gunicorn master runs here (no live pid file in MESDASH_RUN_DIR): "
            "restart the process with your service manager"
        )
    policy = RestartPolicy(settings)
    entry = {
        "source": "api",
        "actor": who.label,
        "reason": body.reason,
        "override_reason": override_reason or None,
    }
    decision, _ = policy.try_restart(entry, override=override)
    if not decision.allowed:
        policy_now = decision.status.as_dict()
        audit.write(ACTION, str(decision.code).lower(), **context, policy=policy_now)
        if decision.code == "RESTART_COOLDOWN":
            raise RestartCooldown(
                decision.detail, retry_after=decision.retry_after, extra={"policy": policy_now}
            )
        raise RestartBlocked(decision.detail, extra={"policy": policy_now})
    request_id = write_request(settings.run_path, {**entry, "override": decision.overridden})
    verdict = "override_accepted" if decision.overridden else "accepted"
    audit.write(ACTION, verdict, request_id=request_id, **context)
    return {
        "status": "accepted",
        "request_id": request_id,
        "override": decision.overridden,
        "policy": policy.status().as_dict(),
        "detail": "restart requested: the watchdog reloads the workers gracefully (SIGHUP)",
    }
