"""A production-shaped mesdash on loopback: gunicorn (``mesdash serve`` with
``MESDASH_ENV=production``), RQ workers (``mesdash worker``) and ``mesdash watchdog`` — the
ExecStart lines of ``deploy/systemd/*.service``, with each unit's ``Environment=`` (the web
unit's jemalloc preload) — over a private Redis and a given warehouse.

Every process is started and ended by the ``Stack`` that owns it (by pid, never by name).
A supervisor thread plays systemd's ``Restart=always`` / ``RestartSec=5`` for the RQ workers
and the watchdog: one that exits (killed by a chaos step, or quitting on its own) is started
again 5 s later, and the restart is recorded in ``Stack.restarts``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from faults import PrivateRedis, free_port, wait_until
from mesdash.admin.auth import hash_token

# the data ends on the last complete factory day, as `mesdash demo` generates it
END = date.today() - timedelta(days=1)
OUT_DIR = Path(os.environ.get("STRESS_OUT_DIR", Path(__file__).resolve().parents[2] / "var" / "stress"))
MESDASH = str(Path(sys.executable).with_name("mesdash"))
UNITS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
WEB_UNIT, WORKER_UNIT, WATCHDOG_UNIT = "mesdash-web.service", "mesdash-worker@.service", "mesdash-watchdog.service"
ADMIN_TOKEN = "stress-admin-token"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Timers shortened so chaos and soak finish in minutes; each is an ordinary setting.
FAST_TIMERS = {
    "CIRCUIT_BREAKER_OPEN_WAIT_SECONDS": "5",
    "JOB_HEARTBEAT_SECONDS": "1",
    "JOB_HEARTBEAT_STALE_SECONDS": "8",
    "JOB_WATCHDOG_INTERVAL_SECONDS": "1",
    "WORKER_RESTART_COOLDOWN": "5",
    "WATCHDOG_INTERVAL_SECONDS": "1",
    "DB_POOL_TIMEOUT": "5",
    "DB_SLOW_SEMAPHORE_WAIT_SECONDS": "10",
    "DB_CALL_TIMEOUT_MS": "30000",
    "DB_SLOW_CALL_TIMEOUT_MS": "60000",
    "HEALTH_PROBE_TIMEOUT_SECONDS": "2",
    "CACHE_L2_BACKOFF_SECONDS": "2",
    # traces of more than 20 lots become RQ jobs, so the mix exercises the workers
    "TRACE_SYNC_CID_LIMIT": "20",
}


def unit_service(unit: str) -> dict[str, list[str]]:
    """The ``[Service]`` settings of ``deploy/systemd/{unit}``, each key with its values in
    order (systemd allows a key more than once, ``Environment=`` above all)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS_DIR / unit).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def unit_environment(unit: str) -> dict[str, str]:
    """The unit's ``Environment=`` assignments (systemd quotes like a shell: ``shlex``
    splits them), so a stack process runs with what its unit gives it."""
    env: dict[str, str] = {}
    for line in unit_service(unit).get("Environment", []):
        for assignment in shlex.split(line):
            key, _, value = assignment.partition("=")
            env[key] = value
    return env


def _stop(proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Stack:
    database_url: str
    redis: PrivateRedis
    root: Path
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    web: subprocess.Popen[bytes] | None = None
    rq_workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    watchdog: subprocess.Popen[bytes] | None = None
    namespace: str = field(default_factory=lambda: f"mesdash-stress-{uuid.uuid4().hex[:8]}")
    restarts: list[dict[str, Any]] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MESDASH_", "DB_", "CIRCUIT_", "EVENT_", "TRACE_", "BATCH_", "JOB_"))
            and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        return {
            **keep,
            "MESDASH_ENV": "production",
            "MESDASH_DATABASE_URL": self.database_url,
            "MESDASH_REDIS_URL": self.redis.url,
            "MESDASH_CACHE_NAMESPACE": self.namespace,
            "MESDASH_VAR_DIR": str(self.root / "var"),
            "MESDASH_RUN_DIR": str(self.root / "run"),
            "MESDASH_SPOOL_DIR": str(self.spool),
            "MESDASH_AUDIT_LOG": str(self.root / "audit.jsonl"),
            "MESDASH_API_TOKENS": f"{hash_token(ADMIN_TOKEN)}:admin",
            "MESDASH_WEB_WORKERS": "2",
            **FAST_TIMERS,
            **self.extra_env,
        }

    def _spawn(self, args: list[str], log_name: str, unit: str) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / log_name).open("ab")
        env = {**self.env, **unit_environment(unit), **self.extra_env}
        try:
            return subprocess.Popen([MESDASH, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def log(self, name: str) -> str:
        path = self.root / "logs" / name
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ lifecycle ----
    def start(self) -> None:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.web = self._spawn(["serve", "--host", "127.0.0.1", "--port", str(self.port)], "web.log", WEB_UNIT)
        for i in range(self.workers):
            self.rq_workers.append(self._spawn(["worker"], f"worker-{i}.log", WORKER_UNIT))
        self.watchdog = self._spawn(["watchdog"], "watchdog.log", WATCHDOG_UNIT)
        threading.Thread(target=self._supervise, name="systemd", daemon=True).start()
        wait_until(self.web_ready, 90, interval=0.3, what="gunicorn with two workers")

    def _supervise(self, restart_sec: float = 5.0) -> None:
        """Restart=always, RestartSec=5 for the workers and the watchdog."""
        dead_since: dict[str, float] = {}
        while not self._stopping.wait(0.25):
            units: dict[str, subprocess.Popen[bytes] | None] = {
                f"worker-{i}": p for i, p in enumerate(self.rq_workers)
            }
            units["watchdog"] = self.watchdog
            for name, proc in units.items():
                if proc is None or proc.poll() is None:
                    dead_since.pop(name, None)
                    continue
                first = dead_since.setdefault(name, time.monotonic())
                if time.monotonic() - first < restart_sec or self._stopping.is_set():
                    continue
                self.restarts.append({"unit": name, "exit_code": proc.returncode, "at": time.time()})
                if name == "watchdog":
                    self.watchdog = self._spawn(["watchdog"], "watchdog.log", WATCHDOG_UNIT)
                else:
                    index = int(name.split("-")[1])
                    self.rq_workers[index] = self._spawn(["worker"], f"{name}.log", WORKER_UNIT)
                dead_since.pop(name, None)

    def web_ready(self) -> bool:
        assert self.web is not None
        if self.web.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log('web.log')[-4000:]}")
        try:
            workers = self.worker_status()["workers"]
        except (httpx.HTTPError, KeyError, ValueError):
            return False
        return len(workers) == 2 and all(w.get("heartbeat_age_seconds") is not None for w in workers)

    def worker_status(self) -> dict[str, Any]:
        response = httpx.get(self.base + "/admin/api/worker/status", headers=AS_ADMIN, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        self._stopping.set()
        procs = [p for p in (self.watchdog, *self.rq_workers, self.web) if p is not None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                _stop(proc)

    # ------------------------------------------------------------- process views ----
    def web_worker_procs(self) -> list[psutil.Process]:
        assert self.web is not None
        return psutil.Process(self.web.pid).children()

    def rq_procs(self) -> list[psutil.Process]:
        return [psutil.Process(p.pid) for p in self.rq_workers if p.poll() is None]

    def kill_worker(self, index: int) -> int:
        """SIGKILL an RQ worker and the work horse it forked (as the OOM killer would)."""
        proc = self.rq_workers[index]
        horses = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        for horse in horses:
            with contextlib.suppress(psutil.Error):
                horse.kill()
        proc.wait(10)
        return len(horses)

    def redis_keys(self) -> dict[str, int]:
        """Key counts in the stack's namespace by family (the part after the namespace)."""
        import redis

        client = redis.Redis.from_url(self.redis.url)
        counts: dict[str, int] = {}
        try:
            for raw in client.scan_iter(count=1000):
                name = raw.decode(errors="replace")
                if name.startswith(self.namespace + ":"):
                    family = name[len(self.namespace) + 1 :].split(":", 1)[0]
                elif name.startswith("rq:"):
                    family = "rq:" + name.split(":", 2)[1]
                else:
                    family = "other"
                counts[family] = counts.get(family, 0) + 1
        finally:
            client.close()
        return counts


@dataclass
class PersistentRedis(PrivateRedis):
    """A private Redis with an append-only file: stopped and started again (as
    ``systemctl restart redis`` would) it comes back with its queues and job records."""

    data_dir: Path | None = None

    def start(self) -> None:
        assert self.data_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answering, 10, what="private Redis answering")


@contextmanager
def running_stack(database_url: str, root: Path, **kwargs: Any) -> Iterator[Stack]:
    redis = PersistentRedis(data_dir=root / "redis")
    redis.start()
    stack = Stack(database_url, redis, root, **kwargs)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        redis.stop()
        # keep the process logs beside the summaries (pytest rotates its tmp dirs)
        shutil.copytree(root / "logs", OUT_DIR / "logs" / root.name, dirs_exist_ok=True)


def generate_warehouse(database_url: str, scale: str, end_date: str) -> None:
    """``mesdash generate`` into ``database_url`` (the operator's command)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MESDASH_")}
    env.update(MESDASH_ENV="production", MESDASH_DATABASE_URL=database_url)
    done = subprocess.run(
        [MESDASH, "generate", "--scale", scale, "--seed", "1", "--end-date", end_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mesdash generate failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


def save_summary(name: str, payload: dict[str, Any], markdown: str = "") -> Path:
    """Write a run's summary to ``var/stress/{name}.json`` (and ``.md``)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    if markdown:
        (OUT_DIR / f"{name}.md").write_text(markdown + "\n")
    return path
