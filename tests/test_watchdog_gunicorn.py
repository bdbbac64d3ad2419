"""The whole recovery path on a real gunicorn: two uvicorn workers over the tiny DuckDB
warehouse, a restart requested through the admin API, one ``mesdash watchdog`` pass (SIGHUP
to the master), requests issued all through the reload — none fails, the worker pids change,
the port and the master stay. Metrics run in multiprocess mode (gunicorn_conf's default)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from faults import free_port, wait_until
from mesdash.admin.auth import hash_token

pytestmark = pytest.mark.timeout(180)
TOKEN = "gunicorn-admin-token"
AS_ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CLOSE = {"Connection": "close"}  # a fresh connection per request: no idle keep-alive reuse
KEEPALIVE = 5  # WEB_KEEPALIVE_SECONDS of this server (gunicorn's own default is 2 s)


@dataclass
class Server:
    base: str
    env: dict[str, str]
    run_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**CLOSE, **kwargs.pop("headers", {})}
        return httpx.get(self.base + path, headers=headers, timeout=30, **kwargs)

    def status(self) -> dict[str, Any]:
        response = self.get("/admin/api/worker/status", headers=AS_ADMIN)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def worker_pids(self) -> set[int]:
        return {w["pid"] for w in self.status()["workers"]}


@pytest.fixture
def server(tiny_duckdb_url: str, tmp_path: Path, redis_url: str) -> Iterator[Server]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "MESDASH_ENV": "testing",
        "MESDASH_DATABASE_URL": tiny_duckdb_url,
        "MESDASH_REDIS_URL": redis_url,
        "MESDASH_CACHE_NAMESPACE": f"mesdash-gunicorn-test-{uuid.uuid4().hex[:8]}",
        "MESDASH_RUN_DIR": str(run_dir),
        "MESDASH_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        "MESDASH_API_TOKENS": f"{hash_token(TOKEN)}:admin",
        "MESDASH_WEB_WORKERS": "2",
        "WEB_KEEPALIVE_SECONDS": str(KEEPALIVE),
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mesdash.app:create_app()",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                "--pid",
                str(run_dir / "gunicorn.pid"),
                "-c",
                "python:mesdash.admin.gunicorn_conf",
                "--graceful-timeout",
                "20",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Server(f"http://127.0.0.1:{port}", env, run_dir, proc, log)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{log.read_text()}")
            try:
                workers = srv.status()["workers"]
            except httpx.HTTPError:
                return False
            return len(workers) == 2 and all(w["heartbeat_age_seconds"] is not None for w in workers)

        wait_until(ready, 60, interval=0.2, what="gunicorn with two workers")
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Traffic:
    """Threads issuing requests until stopped; every outcome is kept."""

    server: Server
    lot: str
    outcomes: list[tuple[float, str, int | str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _one(self, kind: str) -> int | str:
        try:
            if kind == "lineage":
                response = httpx.post(
                    self.server.base + "/api/trace/lineage",
                    json={"container_ids": [self.lot]},
                    headers=CLOSE,
                    timeout=30,
                )
            else:
                response = self.server.get("/health" if kind == "health" else "/api/warehouse/summary")
            return response.status_code
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"

    def _loop(self, kind: str) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            outcome = self._one(kind)
            with self.lock:
                self.outcomes.append((started, kind, outcome))

    def __enter__(self) -> Traffic:
        self.threads = [
            threading.Thread(target=self._loop, args=(k,)) for k in ("health", "summary", "lineage", "health")
        ]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_restart_through_the_api_reloads_gunicorn_without_failed_requests(server: Server) -> None:
    first = server.status()
    master = first["master_pid"]
    old = server.worker_pids()
    assert first["gunicorn"] is True and len(old) == 2 and first["pid"] in old
    lot = server.get("/api/warehouse/summary").json() and _first_lot(server)

    with Traffic(server, lot) as traffic:
        time.sleep(0.5)
        accepted = httpx.post(
            server.base + "/admin/api/worker/restart",
            json={"reason": "integration test"},
            headers={**AS_ADMIN, **CLOSE},
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text
        request_id = accepted.json()["request_id"]
        hup_at = time.monotonic()
        dog = subprocess.run(
            [sys.executable, "-m", "mesdash.cli", "watchdog", "--once"],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        [executed] = [orjson.loads(line) for line in dog.stdout.splitlines()]
        assert executed["decision"] == "executed" and executed["request_id"] == request_id
        assert executed["master_pid"] == master

        def replaced() -> bool:
            workers = server.status()["workers"]
            pids = {w["pid"] for w in workers}
            return (
                len(pids) == 2
                and not pids & old
                and all(w["heartbeat_age_seconds"] is not None for w in workers)
            )

        wait_until(replaced, 60, interval=0.2, what="new workers")
        ready_at = time.monotonic()
        time.sleep(0.5)

    failures = [o for o in traffic.outcomes if o[2] != 200]
    assert failures == [], f"failed during the reload: {failures[:5]}\n{server.log.read_text()[-3000:]}"
    during = [o for o in traffic.outcomes if hup_at <= o[0] <= ready_at]
    assert len(during) >= 4, "requests were issued while the workers were replaced"
    assert {kind for _, kind, _ in traffic.outcomes} == {"health", "summary", "lineage"}

    after = server.status()
    new = server.worker_pids()
    assert after["master_pid"] == master and new.isdisjoint(old) and len(new) == 2
    answered_by = {server.status()["pid"] for _ in range(8)}
    assert answered_by <= new
    assert [h["reason"] for h in after["restart_history"]] == ["integration test"]
    assert after["policy"]["churn_count"] == 1 and after["pending_requests"] == 0

    audit = [orjson.loads(line) for line in Path(server.env["MESDASH_AUDIT_LOG"]).read_bytes().splitlines()]
    assert [(e["decision"], e["request_id"]) for e in audit] == [
        ("accepted", request_id),
        ("executed", request_id),
    ]

    # multiprocess metrics: every /health request of the test, whichever worker (old or new) served it
    time.sleep(0.3)
    served = sum(1 for _, kind, outcome in traffic.outcomes if kind == "health" and outcome == 200)
    metrics = server.get("/metrics")
    assert metrics.status_code == 200
    counted = _metric_total(
        metrics.text,
        "mesdash_http_request_duration_seconds_count",
        route="/health",
        method="GET",
        status="200",
    )
    assert counted == served > 0
    assert _metric_total(metrics.text, "mesdash_circuit_breaker_state") == 0
    assert list((server.run_dir / "prometheus").glob("histogram_*.db"))  # the default multiprocess dir


def _first_lot(server: Server) -> str:
    import duckdb

    path = server.env["MESDASH_DATABASE_URL"].split("://", 1)[1][1:]
    with duckdb.connect(path, read_only=True) as conn:
        row = conn.execute("SELECT MIN(CONTAINERID) FROM dwh.DW_MES_CONTAINER").fetchone()
    assert row is not None
    return str(row[0])


def test_reloads_under_load_answer_every_request(server: Server) -> None:
    """Finding 4 of docs/reliability.md: 16 threads, each request on a fresh connection, while
    the master is SIGHUPed three times. Every request must get an HTTP answer (no reset or
    closed connection) and none a 5xx: an old worker stops accepting, serves the connections
    it has already accepted, and only then shuts down. Four of the threads send their request
    0.2 s after connecting, as a client over a real network does (the request arrives a
    round trip after the accept)."""
    master = server.status()["master_pid"]
    lot = _first_lot(server)
    old = server.worker_pids()
    with Burst(server, lot) as burst:
        time.sleep(1.0)
        for _ in range(3):
            os.kill(master, signal.SIGHUP)
            old = _wait_replaced(server, old)
            time.sleep(0.5)
        time.sleep(0.5)

    outcomes = burst.outcomes
    errors = [o for o in outcomes if isinstance(o[2], str)]
    server_errors = [o for o in outcomes if isinstance(o[2], int) and o[2] >= 500]
    counts = {"requests": len(outcomes), "connection errors": len(errors), "5xx": len(server_errors)}
    assert errors == [] and server_errors == [], (
        f"{counts}: {(errors + server_errors)[:5]}\n{server.log.read_text()[-3000:]}"
    )
    assert {o[2] for o in outcomes} == {200}
    assert len(outcomes) >= 150, counts  # enough traffic that the reload windows saw requests
    assert {kind for _, kind, _ in outcomes} == {"health", "summary", "lineage", "late"}
    assert server.status()["master_pid"] == master


def test_keepalive_follows_the_setting(server: Server) -> None:
    """WEB_KEEPALIVE_SECONDS reaches gunicorn (through gunicorn_conf): a connection idle for
    2.5 s — past gunicorn's own 2 s default — still takes a second request, and an idle
    connection is closed by the server in the end (finding 9)."""
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        assert _keepalive_get(sock, host) == 200
        time.sleep(2.5)
        assert _keepalive_get(sock, host) == 200
        sock.settimeout(KEEPALIVE + 20)
        assert sock.recv(1) == b""  # closed by the server once idle for WEB_KEEPALIVE_SECONDS


def _keepalive_get(sock: socket.socket, host: str) -> int:
    """``GET /health`` on a kept-alive connection; the answer read by its Content-Length."""
    sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer after {answer!r}"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" not in head.lower()
    [length] = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of the answer"
        body += chunk
    return int(head.split(b" ", 2)[1])


def _wait_replaced(server: Server, old: set[int]) -> set[int]:
    """Both workers replaced and beating; status requests that fail mid-reload are retried."""
    new: set[int] = set()

    def replaced() -> bool:
        nonlocal new
        try:
            workers = server.status()["workers"]
        except (httpx.HTTPError, AssertionError):
            return False
        new = {w["pid"] for w in workers}
        return (
            len(new) == 2 and not new & old and all(w["heartbeat_age_seconds"] is not None for w in workers)
        )

    wait_until(replaced, 60, interval=0.1, what="new workers")
    return new


@dataclass
class Burst(Traffic):
    """Traffic with 16 threads: health, warehouse summary and lineage through httpx, and
    ``late`` — a raw socket that sends ``GET /health`` 0.2 s after its connection is made."""

    kinds: tuple[str, ...] = ("health", "summary", "lineage", "late") * 4
    late_seconds: float = 0.2

    def _one(self, kind: str) -> int | str:
        if kind != "late":
            return super()._one(kind)
        host, port = self.server.base.removeprefix("http://").split(":")
        try:
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                time.sleep(self.late_seconds)
                sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        if not answer.startswith(b"HTTP/1.1 "):
            return f"closed without an answer ({len(answer)} bytes)"
        return int(answer.split(b" ", 2)[1])

    def __enter__(self) -> Burst:
        self.threads = [threading.Thread(target=self._loop, args=(kind,)) for kind in self.kinds]
        for t in self.threads:
            t.start()
        return self
