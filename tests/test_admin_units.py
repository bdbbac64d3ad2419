"""Admin building blocks: token auth, restart policy and its persisted history, the audit
log, run-directory files and the recovery recommendation."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import orjson
import pytest

from mesdash.admin.audit import AuditLog
from mesdash.admin.auth import Principal, authenticate, hash_token, parse_tokens
from mesdash.admin.diagnostics import Signals, recommend
from mesdash.admin.policy import RestartPolicy
from mesdash.admin.workers import (
    master_pid,
    pending_requests,
    read_heartbeats,
    workers,
    write_heartbeat,
    write_request,
)
from mesdash.core.resilience.errors import MesdashError
from mesdash.settings import Settings


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        env="testing",
        run_dir=tmp_path / "run",
        audit_log=tmp_path / "audit.jsonl",
        **overrides,
    )


# ------------------------------------------------------------------------- tokens ----
ADMIN, VIEWER = "admin-secret-token", "viewer-secret-token"
SPEC = f"{hash_token(ADMIN)}:admin, {hash_token(VIEWER).upper()}:viewer"


def test_tokens_are_sha256_role_pairs() -> None:
    assert parse_tokens(SPEC) == ((hash_token(ADMIN), "admin"), (hash_token(VIEWER), "viewer"))
    assert parse_tokens(f"nothex:admin,{hash_token(ADMIN)}:root,{hash_token(ADMIN)}") == ()
    assert parse_tokens("") == ()


def test_authenticate_hashes_the_bearer_token() -> None:
    who = authenticate(f"Bearer {ADMIN}", SPEC)
    assert who == Principal("admin", hash_token(ADMIN)[:8])
    assert who.label == f"admin:{hash_token(ADMIN)[:8]}"
    assert authenticate(f"bearer   {VIEWER}", SPEC).role == "viewer"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", f"Basic {ADMIN}", "Bearer wrong", f"Bearer {hash_token(ADMIN)}"]
)
def test_missing_or_unknown_credentials_are_401(header: str | None) -> None:
    with pytest.raises(MesdashError) as info:
        authenticate(header, SPEC)
    assert info.value.code == "UNAUTHORIZED"


def test_there_is_no_default_token() -> None:
    assert Settings(env="testing").api_tokens == ""
    for candidate in ("admin", "mesdash", "", "changeme"):
        with pytest.raises(MesdashError):
            authenticate(f"Bearer {candidate}", "")


# ------------------------------------------------------------------------- policy ----
def test_cooldown_then_churn_block_then_override(tmp_path: Path) -> None:
    clock = Clock()
    policy = RestartPolicy(_settings(tmp_path, worker_restart_cooldown=60.0), clock=clock)
    assert policy.status().state == "allowed"

    decision, entry = policy.try_restart({"source": "api", "reason": "first"})
    assert decision.allowed and entry is not None and entry["reason"] == "first"
    clock.advance(10)
    decision, entry = policy.try_restart({"source": "api"})
    assert not decision.allowed and entry is None
    assert decision.code == "RESTART_COOLDOWN" and decision.retry_after == 50.0
    assert policy.status().cooldown_remaining_seconds == 50.0

    clock.advance(50)
    assert policy.try_restart({"source": "api"})[0].allowed
    clock.advance(60)
    assert policy.try_restart({"source": "api"})[0].allowed
    clock.advance(60)
    status = policy.status()
    assert (status.state, status.churn_count, status.churn_exceeded) == ("blocked", 3, True)
    decision, _ = policy.try_restart({"source": "watchdog"})
    assert decision.code == "RESTART_POLICY_BLOCKED" and not decision.allowed

    decision, entry = policy.try_restart({"source": "api"}, override=True)
    assert decision.allowed and decision.overridden and entry is not None and entry["override"] is True
    # an override never skips the cooldown
    clock.advance(1)
    assert policy.try_restart({"source": "api"}, override=True)[0].code == "RESTART_COOLDOWN"


def test_churn_window_slides_and_history_survives_a_new_policy(tmp_path: Path) -> None:
    clock = Clock()
    settings = _settings(tmp_path, worker_restart_cooldown=1.0, worker_restart_churn_window_seconds=600.0)
    first = RestartPolicy(settings, clock=clock)
    for _ in range(3):
        assert first.try_restart({"source": "api"})[0].allowed
        clock.advance(100)
    reloaded = RestartPolicy(settings, clock=clock)  # another process, or after a reload
    assert reloaded.status().churn_count == 3 and reloaded.status().state == "blocked"
    assert len(reloaded.recent()) == 3
    clock.advance(301)  # now t0 + 601: the first restart (t0) left the 600 s window
    assert reloaded.status().churn_count == 2 and reloaded.status().state == "allowed"
    assert [e["ts"] for e in reloaded.recent()] == [e["ts"] for e in reloaded.history()[1:]]


def test_history_file_is_bounded(tmp_path: Path) -> None:
    clock = Clock()
    policy = RestartPolicy(
        _settings(tmp_path, worker_restart_cooldown=0.0, worker_restart_churn_threshold=10_000), clock=clock
    )
    for _ in range(250):
        assert policy.try_restart({"source": "api"})[0].allowed
        clock.advance(1)
    assert len(policy.history()) == 200
    clock.advance(2 * 86_400)
    policy.try_restart({"source": "api"})
    assert len(policy.history()) == 1  # entries older than a day and the window are dropped


def _restart_in_process(run_dir: str, results: multiprocessing.Queue) -> None:
    settings = Settings(env="testing", run_dir=Path(run_dir), worker_restart_cooldown=60.0)
    decision, _ = RestartPolicy(settings).try_restart({"source": "api", "pid": os.getpid()})
    results.put(decision.allowed)


def test_concurrent_processes_get_exactly_one_restart(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_restart_in_process, args=(str(tmp_path / "run"), results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes == [False, False, False, True]
    assert len(RestartPolicy(_settings(tmp_path)).history()) == 1


# -------------------------------------------------------------------------- audit ----
def test_audit_log_appends_json_lines_that_outlive_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    AuditLog(path).write(
        "worker_restart", "accepted", actor="admin:abcd1234", reason="slow pages", request_id="r1"
    )
    AuditLog(path).write(
        "worker_restart", "restart_cooldown", actor="admin:abcd1234", reason="password=hunter2"
    )
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    first = orjson.loads(lines[0])
    assert first["action"] == "worker_restart" and first["decision"] == "accepted"
    assert (
        first["actor"] == "admin:abcd1234" and first["reason"] == "slow pages" and first["request_id"] == "r1"
    )
    assert first["pid"] == os.getpid() and first["ts"].endswith("+00:00")
    tail = AuditLog(path).tail(10)
    assert [e["decision"] for e in tail] == ["accepted", "restart_cooldown"]
    assert tail[1]["reason"] == "password=***"  # secrets typed into a reason are masked
    assert AuditLog(path).tail(1) == tail[1:]
    assert AuditLog(tmp_path / "none.jsonl").tail() == []


def _write_many(path: str, n: int) -> None:
    log = AuditLog(Path(path))
    for i in range(n):
        log.write("worker_restart", "accepted", actor="admin:x", reason=f"{os.getpid()}-{i}")


def test_audit_log_writers_in_parallel_processes_never_mix_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(path), 50)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    entries = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(entries) == 150 and len({e["reason"] for e in entries}) == 150


# ------------------------------------------------------------------ run directory ----
def test_pid_file_must_name_a_live_process(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert master_pid(run) is None
    run.mkdir()
    (run / "gunicorn.pid").write_text("not a pid")
    assert master_pid(run) is None
    (run / "gunicorn.pid").write_text(f"{os.getpid()}\n")
    assert master_pid(run) == os.getpid()
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    (run / "gunicorn.pid").write_text(str(dead.pid))
    assert master_pid(run) is None


def test_restart_requests_are_files_in_order(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = write_request(run, {"reason": "a"})
    second = write_request(run, {"reason": "b"})
    pending = pending_requests(run)
    assert [r["request_id"] for _, r in pending] == [first, second]
    assert [r["reason"] for _, r in pending] == ["a", "b"]
    assert all(p.parent == run / "restart-requests" for p, _ in pending)


def test_heartbeats_of_dead_processes_are_removed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_heartbeat(run, os.getpid(), time.time(), 3)
    write_heartbeat(run, 2**22 + 12345, time.time(), 0)  # no such process
    assert set(read_heartbeats(run)) == {os.getpid(), 2**22 + 12345}
    assert workers(run, None) == []
    assert set(read_heartbeats(run)) == {os.getpid()}
    assert read_heartbeats(run)[os.getpid()]["inflight"] == 3


# ----------------------------------------------------------------- recommendation ----
def _signals(tmp_path: Path, **changes: object) -> Signals:
    base: dict[str, object] = {
        "database_ok": True,
        "breaker_state": "CLOSED",
        "remaining_open_seconds": 0.0,
        "redis": "ok",
        "pool_saturated": False,
        "semaphore_waiting": 0,
        "memory_percent": 40.0,
        "memory_limit": 90.0,
        "stuck_workers": [],
        "policy": RestartPolicy(_settings(tmp_path / "no-restarts")).status(),
    }
    base.update(changes)
    return Signals(**base)


def test_recommendation_follows_the_most_urgent_signal(tmp_path: Path) -> None:
    clock = Clock()
    policy = RestartPolicy(_settings(tmp_path, worker_restart_cooldown=60.0), clock=clock)
    allowed = policy.status()
    policy.try_restart({"source": "api"})
    cooling = policy.status()
    for _ in range(3):
        clock.advance(61)
        policy.try_restart({"source": "api"}, override=True)
    clock.advance(61)
    blocked = policy.status()
    assert (allowed.state, cooling.state, blocked.state) == ("allowed", "cooldown", "blocked")

    def action(**changes: object) -> str:
        return recommend(_signals(tmp_path, **changes))["action"]

    assert action() == "observe"
    assert action(database_ok=False, breaker_state="OPEN") == "check_warehouse"
    assert action(breaker_state="OPEN", remaining_open_seconds=12.0) == "wait_for_half_open"
    assert "12s" in recommend(_signals(tmp_path, breaker_state="OPEN", remaining_open_seconds=12.0))["reason"]
    assert action(breaker_state="HALF_OPEN") == "observe"
    assert action(memory_percent=95.0, policy=allowed) == "controlled_restart"
    assert action(stuck_workers=[123], policy=allowed) == "controlled_restart"
    assert action(memory_percent=95.0, policy=cooling) == "wait_for_cooldown"
    assert action(memory_percent=95.0, policy=blocked) == "investigate_churn"
    assert action(pool_saturated=True) == "throttle"
    assert action(semaphore_waiting=2) == "throttle"
    assert action(redis="error") == "check_redis"
    assert action(policy=blocked) == "investigate_churn"
