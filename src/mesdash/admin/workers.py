"""The run directory: gunicorn's pid file, worker heartbeats and restart request files.

``{run}/gunicorn.pid``           written by gunicorn (``--pid``); its absence means "no
                                 gunicorn here" and a restart is ``RESTART_UNSUPPORTED``.
``{run}/workers/{pid}.json``     each web worker's heartbeat, touched by its event loop: a
                                 stale one with a live process means a stuck worker.
``{run}/restart-requests/*.json`` accepted restart requests; ``mesdash watchdog`` executes
                                 them (SIGHUP to the master) and removes them.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from mesdash.admin.policy import iso

PID_FILE = "gunicorn.pid"
WORKERS_DIR = "workers"
REQUESTS_DIR = "restart-requests"


def atomic_write(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(payload))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negative pids would signal process groups
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def master_pid(run_dir: Path) -> int | None:
    """gunicorn's master pid from the pid file, if that process is alive."""
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


# ------------------------------------------------------------------ heartbeats ---------
def heartbeat_path(run_dir: Path, pid: int) -> Path:
    return run_dir / WORKERS_DIR / f"{pid}.json"


def write_heartbeat(run_dir: Path, pid: int, started_at: float, inflight: int) -> None:
    now = time.time()
    atomic_write(
        heartbeat_path(run_dir, pid),
        {
            "pid": pid,
            "ppid": os.getppid(),
            "started_at": started_at,
            "heartbeat_at": now,
            "inflight": inflight,
        },
    )


def remove_heartbeat(run_dir: Path, pid: int) -> None:
    with contextlib.suppress(OSError):
        heartbeat_path(run_dir, pid).unlink()


def read_heartbeats(run_dir: Path) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for path in (run_dir / WORKERS_DIR).glob("*.json"):
        try:
            data = orjson.loads(path.read_bytes())
            out[int(data["pid"])] = data
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


@dataclass(frozen=True)
class WorkerInfo:
    pid: int
    started_at: str
    rss_mb: float
    heartbeat_age_seconds: float | None
    inflight: int | None

    def stuck(self, limit: float) -> bool:
        return self.heartbeat_age_seconds is not None and self.heartbeat_age_seconds > limit


def workers(run_dir: Path, master: int | None) -> list[WorkerInfo]:
    """The master's live worker processes with their heartbeats; drops heartbeat files of
    processes that are gone."""
    beats = read_heartbeats(run_dir)
    now = time.time()
    out = []
    children: list[psutil.Process] = []
    if master is not None:
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(master).children()
    for proc in children:
        try:
            with proc.oneshot():
                started, rss = proc.create_time(), proc.memory_info().rss
        except psutil.Error:
            continue
        beat = beats.get(proc.pid)
        out.append(
            WorkerInfo(
                pid=proc.pid,
                started_at=iso(started),
                rss_mb=round(rss / 2**20, 1),
                heartbeat_age_seconds=round(now - beat["heartbeat_at"], 2) if beat else None,
                inflight=beat.get("inflight") if beat else None,
            )
        )
    for pid in beats:
        if not _alive(pid):
            remove_heartbeat(run_dir, pid)
    return sorted(out, key=lambda w: w.pid)


# ------------------------------------------------------------- restart requests --------
def write_request(run_dir: Path, entry: dict[str, Any]) -> str:
    """Store an accepted restart request for the watchdog; returns its id."""
    request_id = uuid.uuid4().hex[:12]
    name = f"{time.time_ns()}-{request_id}.json"
    atomic_write(run_dir / REQUESTS_DIR / name, {"request_id": request_id, **entry})
    return request_id


def pending_requests(run_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Restart requests not executed yet, oldest first."""
    out = []
    for path in sorted((run_dir / REQUESTS_DIR).glob("*.json")):
        try:
            out.append((path, orjson.loads(path.read_bytes())))
        except (OSError, ValueError):
            continue
    return out
