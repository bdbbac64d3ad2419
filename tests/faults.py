"""Private PostgreSQL clusters and Redis servers for fault tests, and an app factory.

Fault tests stop, pause and kill servers, so they never touch the shared ones (5432, 6379):
``PrivatePostgres`` creates its own cluster with Debian's wrappers (``pg_createcluster`` on a
free port — ``initdb`` refuses root, the wrappers run it as ``postgres``), with trust auth for
127.0.0.1 and optionally a password (scram-sha-256) user; ``PrivateRedis`` runs its own
``redis-server``. Both are torn down by their context managers, also after a failed test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pytest

PG_VERSION = "15"
TINY_END = date(2026, 6, 30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")


# --------------------------------------------------------------------- PostgreSQL ----
@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL 15 cluster on a free loopback port."""

    name: str = field(default_factory=lambda: f"mesdash_fault_{os.getpid()}_{free_port()}")
    port: int = field(default_factory=free_port)
    password_user: str | None = None  # a role that must log in with a password (scram)
    password: str | None = None

    @property
    def conf_dir(self) -> Path:
        return Path(f"/etc/postgresql/{PG_VERSION}/{self.name}")

    @property
    def data_dir(self) -> Path:
        return Path(f"/var/lib/postgresql/{PG_VERSION}/{self.name}")

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        _run("pg_createcluster", PG_VERSION, self.name, "-p", str(self.port), "--start-conf", "manual")
        (self.conf_dir / "conf.d" / "mesdash_fault.conf").write_text(
            "listen_addresses = '127.0.0.1'\nfsync = off\nsynchronous_commit = off\n"
            "full_page_writes = off\nmax_connections = 60\nshared_buffers = 16MB\n"
        )
        lines = ["local all postgres peer"]
        if self.password_user:
            lines.append(f"host all {self.password_user} 127.0.0.1/32 scram-sha-256")
        lines.append("host all all 127.0.0.1/32 trust")
        (self.conf_dir / "pg_hba.conf").write_text("\n".join(lines) + "\n")
        self.start()
        if self.password_user:
            import psycopg

            with psycopg.connect(self.url(), autocommit=True) as conn:
                conn.execute("SET password_encryption = 'scram-sha-256'")
                conn.execute(
                    f'CREATE ROLE "{self.password_user}" LOGIN PASSWORD {_literal(self.password or "")}'
                )

    def start(self) -> None:
        _run("pg_ctlcluster", PG_VERSION, self.name, "start")
        wait_until(self.accepting, 20, what="private PostgreSQL accepting connections")

    def stop(self) -> None:
        self.resume()
        _run("pg_ctlcluster", PG_VERSION, self.name, "stop", "-m", "fast")

    def accepting(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url(), connect_timeout=2).close()
            return True
        except psycopg.Error:
            return False

    def processes(self) -> list[psutil.Process]:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            master = psutil.Process(pid)
            return [master, *master.children(recursive=True)]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    def pause(self) -> None:
        """SIGSTOP the postmaster and every backend: the server answers nothing."""
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGCONT)

    def drop(self) -> None:
        self.resume()
        subprocess.run(
            ["pg_dropcluster", "--stop", PG_VERSION, self.name], capture_output=True, timeout=60, check=False
        )

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def execute(
        self, sql: str, database: str = "postgres", params: tuple[Any, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """One statement on a fresh admin connection (autocommit); rows if any."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=3) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def private_postgres(**kwargs: Any) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(**kwargs)
    try:
        pg.create()
        yield pg
    finally:
        pg.drop()


def load_tiny(url: str) -> None:
    """The generated tiny fab (seed 7), as the shared fixtures have it."""
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.synth import generate

    wh = Warehouse(url, read_only=False)
    try:
        generate(wh, scale="tiny", seed=7, end_date=TINY_END)
    finally:
        wh.close()


# -------------------------------------------------------------------------- Redis ----
@dataclass
class PrivateRedis:
    """A private ``redis-server``; ``appendonly`` keeps its keys (and their TTLs) across a
    stop and start, as the stress setup's Redis does, in a directory of its own."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    appendonly: bool = False
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.appendonly and self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="mesdash-redis-"))
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                *(["--dir", str(self.data_dir)] if self.data_dir is not None else []),
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answering, 10, what="private Redis answering")

    def answering(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@contextmanager
def private_redis(appendonly: bool = False) -> Iterator[PrivateRedis]:
    server = PrivateRedis(appendonly=appendonly)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if server.data_dir is not None:
            shutil.rmtree(server.data_dir, ignore_errors=True)


# ------------------------------------------------------------------------- the app ----
def reset_runtime() -> None:
    """Forget every process-wide object that settings built (settings, warehouse, Redis,
    caches, health memo) so the next request sees the current environment."""
    from mesdash.admin.health import DEEP, HEALTH
    from mesdash.core.db import reset_warehouse
    from mesdash.core.redis_client import reset_redis
    from mesdash.settings import reset_settings
    from mesdash.web.summary import clear_summary_cache

    with contextlib.suppress(ImportError):
        from mesdash.core.cache import reset_l1

        reset_l1()
    clear_summary_cache()
    HEALTH.clear()
    DEEP.clear()
    reset_warehouse()
    reset_redis()
    reset_settings()


@contextmanager
def app_client(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[Any]:
    """A TestClient over ``create_app()`` with ``env`` set (and everything reset around it)."""
    from fastapi.testclient import TestClient

    from mesdash.app import create_app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_runtime()
    try:
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            yield client
    finally:
        reset_runtime()


def process_warehouse() -> Any:
    from mesdash.core.db import get_warehouse

    return get_warehouse()


# ------------------------------------------------------------- a signal recorder ----
_RECORDER = """
import os, signal, subprocess, sys, time
out, count = sys.argv[1], int(sys.argv[2])
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(count)]
def hup(signum, frame):
    with open(out, "a") as fh:
        fh.write("HUP\\n")
def term(signum, frame):
    for kid in kids:
        kid.kill()
    sys.exit(0)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
with open(out + ".tmp", "w") as fh:
    fh.write(" ".join(str(k.pid) for k in kids))
os.rename(out + ".tmp", out + ".ready")
while True:
    time.sleep(1)
"""


@dataclass
class SignalRecorder:
    """A live process standing where gunicorn's master would: its pid is in the run
    directory's pid file, it has ``children`` child processes, and it counts SIGHUPs."""

    pid: int
    children: list[int]
    log: Path

    def hups(self) -> int:
        return self.log.read_text().count("HUP") if self.log.exists() else 0


@contextmanager
def signal_recorder(run_dir: Path, children: int = 0) -> Iterator[SignalRecorder]:
    import sys

    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"signals-{free_port()}.log"
    proc = subprocess.Popen([sys.executable, "-c", _RECORDER, str(log), str(children)])
    ready = Path(str(log) + ".ready")
    try:
        wait_until(ready.exists, 15, what="signal recorder ready")
        kids = [int(p) for p in ready.read_text().split()]
        (run_dir / "gunicorn.pid").write_text(f"{proc.pid}\n")
        yield SignalRecorder(proc.pid, kids, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
