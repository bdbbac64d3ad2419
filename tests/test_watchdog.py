"""``mesdash watchdog``: restart requests and automatic triggers under the policy, real
signals to a live process standing in the pid file (the gunicorn run is in
test_watchdog_gunicorn.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from faults import SignalRecorder, signal_recorder, wait_until
from mesdash.admin.audit import AuditLog
from mesdash.admin.policy import RestartPolicy
from mesdash.admin.watchdog import Watchdog
from mesdash.admin.workers import heartbeat_path, pending_requests, write_heartbeat, write_request
from mesdash.settings import Settings


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"watchdog_memory_percent": 100.0, **overrides}  # 100: never, unless asked
    return Settings(
        env="testing",
        run_dir=tmp_path / "run",
        audit_log=tmp_path / "audit.jsonl",
        **values,
    )


def _audit(settings: Settings) -> list[dict[str, object]]:
    return AuditLog(settings.audit_log_path).tail(1000)


def _hups(recorder: SignalRecorder, expected: int) -> None:
    wait_until(lambda: recorder.hups() >= expected, 5, what=f"{expected} SIGHUP(s)")
    time.sleep(0.1)
    assert recorder.hups() == expected


def test_requests_are_executed_with_one_sighup(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with signal_recorder(settings.run_path) as master:
        first = write_request(
            settings.run_path, {"actor": "admin:aaaa1111", "reason": "slow", "override": False}
        )
        second = write_request(
            settings.run_path, {"actor": "admin:bbbb2222", "reason": "again", "override": True}
        )
        done = Watchdog(settings).run_once()
        _hups(master, 1)
        assert pending_requests(settings.run_path) == []
        assert [(e["decision"], e["request_id"], e["requested_by"]) for e in done] == [
            ("executed", first, "admin:aaaa1111"),
            ("executed", second, "admin:bbbb2222"),
        ]
        assert [e["override"] for e in done] == [False, True]
        assert all(e["master_pid"] == master.pid and e["actor"] == "watchdog" for e in done)
        assert Watchdog(settings).run_once() == []
        _hups(master, 1)
    assert _audit(settings) == done


def test_requests_without_a_master_are_dropped(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    request_id = write_request(settings.run_path, {"actor": "admin:x", "reason": "r"})
    [entry] = Watchdog(settings).run_once()
    assert entry["decision"] == "dropped" and entry["request_id"] == request_id
    assert pending_requests(settings.run_path) == []


def test_memory_pressure_restarts_once_then_respects_the_cooldown(tmp_path: Path) -> None:
    settings = _settings(tmp_path, watchdog_memory_percent=1.0, worker_restart_cooldown=60.0)
    with signal_recorder(settings.run_path) as master:
        dog = Watchdog(settings)
        [executed] = dog.run_once()
        _hups(master, 1)
        assert executed["action"] == "auto_restart" and executed["decision"] == "executed"
        assert str(executed["reason"]).startswith("memory pressure: system memory at")
        [recorded] = RestartPolicy(settings).history()
        assert recorded["source"] == "watchdog" and recorded["override"] is False

        [refused] = dog.run_once()
        assert refused["decision"] == "restart_cooldown"
        assert dog.run_once() == []  # the same refusal is audited once
        _hups(master, 1)
    assert [e["decision"] for e in _audit(settings)] == ["executed", "restart_cooldown"]


def test_churn_block_is_never_overridden_by_the_watchdog(tmp_path: Path) -> None:
    settings = _settings(tmp_path, watchdog_memory_percent=1.0, worker_restart_cooldown=0.0)
    policy = RestartPolicy(settings)
    for _ in range(3):
        policy.try_restart({"source": "api"})
    with signal_recorder(settings.run_path) as master:
        [refused] = Watchdog(settings).run_once()
        assert refused["decision"] == "restart_policy_blocked"
        assert refused["policy"]["churn_count"] == 3
        time.sleep(0.2)
        assert master.hups() == 0
    assert len(policy.history()) == 3


def test_stuck_worker_triggers_a_reload(tmp_path: Path) -> None:
    settings = _settings(tmp_path, watchdog_stuck_seconds=2.0)
    with signal_recorder(settings.run_path, children=2) as master:
        fresh, stale = master.children
        now = time.time()
        write_heartbeat(settings.run_path, fresh, now, 0)
        write_heartbeat(settings.run_path, stale, now, 1)
        dog = Watchdog(settings)
        assert dog.triggers(master.pid) == [] and dog.run_once() == []

        path = heartbeat_path(settings.run_path, stale)
        beat = orjson.loads(path.read_bytes())
        path.write_bytes(orjson.dumps({**beat, "heartbeat_at": now - 10}))
        [executed] = dog.run_once()
        _hups(master, 1)
        assert executed["decision"] == "executed"
        assert f"worker {stale} stuck: heartbeat" in str(executed["reason"])
        assert str(fresh) not in str(executed["reason"])


def test_worker_over_its_memory_limit_triggers_a_reload(tmp_path: Path) -> None:
    settings = _settings(tmp_path, watchdog_worker_max_rss_mb=1)
    with signal_recorder(settings.run_path, children=1) as master:
        reasons = Watchdog(settings).triggers(master.pid)
        assert reasons == [reasons[0]] and reasons[0].startswith(f"worker {master.children[0]} uses ")
        assert Watchdog(settings).run_once()[0]["decision"] == "executed"
        _hups(master, 1)


def test_run_forever_passes_until_stopped(tmp_path: Path) -> None:
    settings = _settings(tmp_path, watchdog_interval_seconds=0.1)
    with signal_recorder(settings.run_path) as master:
        stop = threading.Event()
        runner = threading.Thread(target=Watchdog(settings).run_forever, args=(stop,))
        runner.start()
        try:
            write_request(settings.run_path, {"actor": "admin:x", "reason": "first"})
            _hups(master, 1)
            write_request(settings.run_path, {"actor": "admin:x", "reason": "second"})
            _hups(master, 2)
        finally:
            stop.set()
            runner.join(5)
        assert not runner.is_alive()
    assert [e["reason"] for e in _audit(settings)] == ["first", "second"]


def test_watchdog_command_runs_one_pass(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with signal_recorder(settings.run_path) as master:
        request_id = write_request(settings.run_path, {"actor": "admin:x", "reason": "cli"})
        env = {
            **os.environ,
            "MESDASH_ENV": "testing",
            "MESDASH_RUN_DIR": str(settings.run_path),
            "MESDASH_AUDIT_LOG": str(settings.audit_log_path),
        }
        done = subprocess.run(
            [sys.executable, "-m", "mesdash.cli", "watchdog", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        [line] = done.stdout.splitlines()
        entry = orjson.loads(line)
        assert entry["decision"] == "executed" and entry["request_id"] == request_id
        _hups(master, 1)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_no_pid_file_means_no_triggers(tmp_path: Path, value: str) -> None:
    settings = _settings(tmp_path, watchdog_memory_percent=1.0)
    settings.run_path.mkdir(parents=True)
    (settings.run_path / "gunicorn.pid").write_text(value)
    assert Watchdog(settings).run_once() == []
    assert RestartPolicy(settings).history() == []
