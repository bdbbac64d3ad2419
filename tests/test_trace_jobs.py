"""Trace jobs: admission (200 / 202 / 413), part files + manifest, NDJSON stream with
``from_batch``, paged results, resume, in process and on real Redis with RQ workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from mesdash.core.db import Warehouse
from mesdash.core.jobs import job_status
from mesdash.core.resilience.problem import jsonable_bytes
from mesdash.settings import reset_settings
from mesdash.trace.events import EventFetcher
from mesdash.trace.stream import stream_job

TESTS_DIR = Path(__file__).parent
SYNC_LIMIT = 5
FIRST_BATCH = 50  # a domain's first id batch ...
ID_BATCH = 200  # ... and the later ones
STREAM_BATCH = 300
PADDING = [f"NOLOT-{i:05d}" for i in range(3000)]  # ids without events: several thousand lots


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(job_id: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := job_status(job_id))["status"] in statuses and s, timeout, str(statuses)))


@pytest.fixture
def trace_env(tiny_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from mesdash.core.db.warehouse import reset_warehouse
    from mesdash.core.ratelimit import reset_rate_limiter
    from mesdash.trace.admission import reset_batch_seconds

    spool = tmp_path / "spool"
    for name, value in {
        "MESDASH_DATABASE_URL": tiny_url,
        "MESDASH_SPOOL_DIR": str(spool),
        "TRACE_SYNC_CID_LIMIT": str(SYNC_LIMIT),
        "TRACE_JOB_FIRST_BATCH_SIZE": str(FIRST_BATCH),
        "TRACE_JOB_ID_BATCH_SIZE": str(ID_BATCH),
        "TRACE_STREAM_BATCH_SIZE": str(STREAM_BATCH),
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    reset_warehouse()
    reset_rate_limiter()
    reset_batch_seconds()
    yield spool
    reset_warehouse()
    reset_rate_limiter()
    reset_batch_seconds()


@pytest.fixture
def client(trace_env: Path) -> Iterator[TestClient]:
    from mesdash.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def all_lots(wh: Warehouse) -> list[str]:
    sql = "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' ORDER BY CONTAINERID"
    return [str(r[0]) for r in wh.read_sql_df(sql).rows]


def id_batch_count(ids: int) -> int:
    return 1 + -(-(ids - FIRST_BATCH) // ID_BATCH) if ids > FIRST_BATCH else 1


def canonical(rows: list[dict[str, Any]]) -> list[bytes]:
    """Rows as sorted canonical JSON (what a client sees), for exact multiset equality."""
    return sorted(orjson.dumps(orjson.loads(jsonable_bytes(r)), option=orjson.OPT_SORT_KEYS) for r in rows)


def direct(wh: Warehouse, ids: list[str], domain: str) -> list[bytes]:
    fetched = EventFetcher(wh).fetch_events(ids, domain)["records_by_cid"]
    return canonical([row for rows in fetched.values() for row in rows])


def parse(lines: Iterator[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lines if line.strip()]


def stream_rows(messages: list[dict[str, Any]], domain: str) -> list[dict[str, Any]]:
    return [row for m in messages if m["type"] == "records" and m["domain"] == domain for row in m["rows"]]


def check_stream_shape(messages: list[dict[str, Any]], domains: list[str], from_batch: int = 0) -> None:
    types = [m["type"] for m in messages]
    assert types[0] == "meta" and types[-2:] == ["quality", "complete"]
    assert [m["domain"] for m in messages if m["type"] == "domain_start"] == domains
    assert [m["domain"] for m in messages if m["type"] == "domain_end"] == domains
    for domain in domains:  # records of a domain sit between its start and end
        start = messages.index({"type": "domain_start", "domain": domain})
        end = next(i for i, m in enumerate(messages) if m["type"] == "domain_end" and m["domain"] == domain)
        inside = [m for m in messages[start:end] if m["type"] == "records"]
        assert all(m["domain"] == domain for m in inside)
    batches = [m["batch"] for m in messages if m["type"] == "records"]
    assert batches == list(range(from_batch, from_batch + len(batches)))
    assert all(0 < len(m["rows"]) <= STREAM_BATCH for m in messages if m["type"] == "records")


# ----------------------------------------------------------------------- admission ----------
def test_admission_boundaries(client: TestClient, tiny_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    lots = all_lots(tiny_warehouse)
    inline = client.post("/api/trace/events", json={"container_ids": lots[:SYNC_LIMIT], "domains": ["history"]})
    assert inline.status_code == 200 and len(inline.json()["container_ids"]) == SYNC_LIMIT
    job = client.post("/api/trace/events", json={"container_ids": lots[: SYNC_LIMIT + 1], "domains": ["history"]})
    assert job.status_code == 202
    body = job.json()
    assert set(body) == {"job_id", "kind", "status_url", "stream_url", "result_url"}
    assert body["kind"] == "trace" and body["job_id"].startswith("trace-")
    assert body["status_url"] == f"/api/trace/job/{body['job_id']}"
    assert body["stream_url"] == f"/api/trace/job/{body['job_id']}/stream"
    assert body["result_url"] == f"/api/trace/job/{body['job_id']}/result"
    wait_status(body["job_id"], "finished")
    monkeypatch.setenv("TRACE_EVENTS_CID_LIMIT", "7")
    reset_settings()
    refused = client.post("/api/trace/events", json={"container_ids": lots[:8], "domains": ["history"]})
    assert refused.status_code == 413
    assert refused.json()["code"] == "TOO_MANY_IDS" and refused.json()["limit"] == 7


def test_lineage_expansion_past_the_sync_limit_becomes_a_job(client: TestClient, tiny_warehouse: Warehouse) -> None:
    from mesdash.trace.service import expand_lineage

    seeds = all_lots(tiny_warehouse)
    seed = next(s for s in seeds if len(expand_lineage(tiny_warehouse, [s], "both")) > SYNC_LIMIT)
    resp = client.post("/api/trace/events", json={"container_ids": [seed], "domains": ["history"], "lineage": "both"})
    assert resp.status_code == 202
    wait_status(resp.json()["job_id"], "finished")
    meta = parse(client.get(resp.json()["stream_url"]).iter_lines())[0]
    assert meta["container_count"] == len(expand_lineage(tiny_warehouse, [seed], "both"))


def test_cost_estimate_sends_a_small_but_slow_request_to_a_job(client: TestClient, tiny_warehouse: Warehouse) -> None:
    from mesdash.trace.admission import estimate_seconds, record_batch_seconds

    record_batch_seconds("rejects", 40.0)  # recent batches of this domain were slow
    assert estimate_seconds(3, ["rejects"]) == 40.0
    lots = all_lots(tiny_warehouse)[:3]
    slow = client.post("/api/trace/events", json={"container_ids": lots, "domains": ["rejects"]})
    assert slow.status_code == 202
    assert client.post("/api/trace/events", json={"container_ids": lots, "domains": ["history"]}).status_code == 200
    wait_status(slow.json()["job_id"], "finished")


# ---------------------------------------------------------------- in process, end to end -----
def test_job_stream_result_and_ids_in_process(client: TestClient, tiny_warehouse: Warehouse, trace_env: Path) -> None:
    lots = all_lots(tiny_warehouse)
    ids = lots + PADDING
    domains = ["history", "rejects"]
    resp = client.post("/api/trace/events", json={"container_ids": ids, "domains": ["rejects", "history", "rejects"]})
    assert resp.status_code == 202
    job_id = resp.json()["job_id"]
    same = client.post("/api/trace/events", json={"container_ids": list(reversed(ids)), "domains": domains})
    assert same.json()["job_id"] == job_id  # normalized request → the same job
    status = wait_status(job_id, "finished")
    batches = id_batch_count(len(ids))
    assert status["progress"]["total"] == status["progress"]["completed"] == batches * 2
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "finished"  # generic alias

    messages = parse(client.get(f"/api/trace/job/{job_id}/stream").iter_lines())
    check_stream_shape(messages, domains)
    assert messages[0]["container_count"] == len(ids)
    for domain in domains:
        assert canonical(stream_rows(messages, domain)) == direct(tiny_warehouse, lots, domain)
    assert messages[-1]["rows"] == sum(len(direct(tiny_warehouse, lots, d)) for d in domains)
    assert messages[-2]["status"] == "complete"

    part_files = sorted(p.name for p in (trace_env / "trace" / job_id).glob("part-*.parquet"))
    assert part_files and all(p.startswith(("part-history-", "part-rejects-")) for p in part_files)
    assert not list((trace_env / "trace" / job_id).glob("*.tmp"))

    cut = len([m for m in messages if m["type"] == "records"]) // 2
    tail = parse(client.get(f"/api/trace/job/{job_id}/stream", params={"from_batch": cut}).iter_lines())
    check_stream_shape(tail, domains, from_batch=cut)
    full_records = [m for m in messages if m["type"] == "records"]
    assert [m for m in tail if m["type"] == "records"] == full_records[cut:]

    history = stream_rows(messages, "history")
    page = client.get(f"/api/trace/job/{job_id}/result", params={"domain": "history", "offset": 250, "limit": 400})
    assert page.status_code == 200
    assert page.json()["total"] == len(history) and page.json()["data"] == history[250:650]
    assert client.get(f"/api/trace/job/{job_id}/result", params={"domain": "holds"}).status_code == 400
    assert client.get("/api/trace/job/trace-0000000000000000/stream").status_code == 404


def test_results_expiring_while_a_stream_reads_them_end_it_with_an_error_line(
    client: TestClient, tiny_warehouse: Warehouse, trace_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 30-minute soak's one failure: the stream of a finished job whose record and result
    folder (TTL 60 s there) expired after its 200 raised NotFound mid-body, a cut stream."""
    import shutil

    import mesdash.trace.stream as stream_module
    from mesdash.core.resilience.errors import NotFound

    lots = all_lots(tiny_warehouse)
    job_id = client.post("/api/trace/events", json={"container_ids": lots + PADDING, "domains": ["history"]}).json()[
        "job_id"
    ]
    wait_status(job_id, "finished")
    whole = [m for m in parse(stream_job(job_id)) if m["type"] == "records"]
    lines = stream_job(job_id)
    first = [orjson.loads(next(lines)) for _ in range(3)]
    assert [m["type"] for m in first] == ["meta", "domain_start", "records"]
    shutil.rmtree(trace_env / "trace" / job_id)  # the cleanup took the expired results
    rest = parse(lines)
    records = [m for m in first + rest if m["type"] == "records"]
    assert rest[-1]["type"] == "error" and rest[-1]["code"] == "CACHE_EXPIRED"
    assert records == whole[: len(records)]  # the open part was read to its end, the next one was gone
    assert rest[-1]["resume_from_batch"] == len(records) < len(whole)

    def gone(job: str) -> dict[str, Any]:
        raise NotFound(f"no job {job!r} (unknown, or its results expired)")

    again = client.post("/api/trace/events", json={"container_ids": lots, "domains": ["rejects"]}).json()["job_id"]
    wait_status(again, "finished")
    lines = stream_job(again)  # the record was there when the stream answered 200 ...
    shutil.rmtree(trace_env / "trace" / again)
    monkeypatch.setattr(stream_module, "get_record", gone)  # ... and expired before its first line
    assert parse(lines) == [
        {"type": "error", "job_id": again, "code": "CACHE_EXPIRED",
         "detail": "the job's results expired while the stream read them", "resume_from_batch": 0}
    ]


def test_failed_batch_fails_the_job_and_resubmit_resumes(
    client: TestClient, tiny_warehouse: Warehouse, trace_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesdash.core.resilience.errors import DBUnavailable

    lots = all_lots(tiny_warehouse)
    calls: list[int] = []
    original = EventFetcher.batch_rows

    def flaky(self: EventFetcher, domain: str, ids: Any, as_of: Any) -> Iterator[list[dict[str, Any]]]:
        calls.append(1)
        if len(calls) == 3:
            raise DBUnavailable("warehouse went away")
        yield from original(self, domain, ids, as_of)

    monkeypatch.setattr(EventFetcher, "batch_rows", flaky)
    ask = {"container_ids": lots, "domains": ["history"]}
    job_id = client.post("/api/trace/events", json=ask).json()["job_id"]
    failed = wait_status(job_id, "failed")
    assert failed["error"]["code"] == "DB_UNAVAILABLE" and failed["progress"]["completed"] == 2
    partial = parse(client.get(f"/api/trace/job/{job_id}/stream").iter_lines())
    assert partial[-1]["type"] == "error" and partial[-1]["code"] == "DB_UNAVAILABLE"
    resume_from = partial[-1]["resume_from_batch"]
    early = client.get(f"/api/trace/job/{job_id}/result", params={"domain": "history"})
    assert early.status_code == 409 and early.json()["code"] == "JOB_NOT_FINISHED"
    assert resume_from == len([m for m in partial if m["type"] == "records"]) > 0

    again = client.post("/api/trace/events", json=ask)
    assert again.status_code == 202 and again.json()["job_id"] == job_id
    finished = wait_status(job_id, "finished")
    assert finished["attempt"] == 2
    assert len(calls) == id_batch_count(len(lots)) + 1  # finished batches were not fetched again
    rest = parse(client.get(f"/api/trace/job/{job_id}/stream", params={"from_batch": resume_from}).iter_lines())
    got = stream_rows(partial, "history") + stream_rows(rest, "history")
    assert canonical(got) == direct(tiny_warehouse, lots, "history")  # every row exactly once


def test_batch_bounds_start_small_then_full() -> None:
    from mesdash.trace.parts import batch_bounds

    assert batch_bounds(0, 100, 1000) == []
    assert batch_bounds(50, 100, 1000) == [(0, 50)]
    assert batch_bounds(2350, 100, 1000) == [(0, 100), (100, 1100), (1100, 2100), (2100, 2350)]
    assert batch_bounds(5, 10, 2) == [(0, 2), (2, 4), (4, 5)]  # never a first batch above the rest


def test_first_batch_is_small_and_a_retry_keeps_the_first_attempts_batches(
    client: TestClient, tiny_warehouse: Warehouse, trace_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from mesdash.core.resilience.errors import DBUnavailable
    from mesdash.trace.parts import Manifest, part_name

    lots = all_lots(tiny_warehouse)
    sizes: list[int] = []  # ids per fetched batch, in order
    original = EventFetcher.batch_rows

    def flaky(self: EventFetcher, domain: str, ids: Any, as_of: Any) -> Iterator[list[dict[str, Any]]]:
        sizes.append(len(ids))
        if len(sizes) == 2:
            raise DBUnavailable("warehouse went away")
        yield from original(self, domain, ids, as_of)

    monkeypatch.setattr(EventFetcher, "batch_rows", flaky)
    ask = {"container_ids": lots, "domains": ["history"]}
    job_id = client.post("/api/trace/events", json=ask).json()["job_id"]
    wait_status(job_id, "failed")
    folder = trace_env / "trace" / job_id
    ids = Manifest.load_ids(folder)
    manifest = Manifest.load(folder)
    assert ids is not None and manifest is not None and len(ids) > FIRST_BATCH + ID_BATCH
    assert [p["batch"] for p in manifest.done("history")] == [0]
    first_part = pq.read_table(folder / part_name("history", 0)).to_pylist()
    partial = parse(client.get(f"/api/trace/job/{job_id}/stream").iter_lines())
    assert partial[-1]["type"] == "error"
    resume_from = partial[-1]["resume_from_batch"]
    assert resume_from == len([m for m in partial if m["type"] == "records"]) > 0

    monkeypatch.setenv("TRACE_JOB_FIRST_BATCH_SIZE", "7")  # changed between the attempts:
    monkeypatch.setenv("TRACE_JOB_ID_BATCH_SIZE", "90")  # the retry cuts as the manifest says
    reset_settings()
    assert client.post("/api/trace/events", json=ask).json()["job_id"] == job_id
    wait_status(job_id, "finished")
    later = [min(ID_BATCH, len(ids) - start) for start in range(FIRST_BATCH, len(ids), ID_BATCH)]
    assert sizes == [FIRST_BATCH, ID_BATCH, *later]  # the failed batch once more, none twice
    assert first_part and canonical(first_part) == direct(tiny_warehouse, ids[:FIRST_BATCH], "history")
    rest = parse(client.get(f"/api/trace/job/{job_id}/stream", params={"from_batch": resume_from}).iter_lines())
    assert rest[-1]["type"] == "complete"
    got = stream_rows(partial, "history") + stream_rows(rest, "history")
    assert canonical(got) == direct(tiny_warehouse, lots, "history")  # every row exactly once


# --------------------------------------------------------------------- Redis and RQ ----------
@pytest.fixture
def rq_worker(trace_env: Path, redis_namespace: str) -> Iterator[Callable[[float], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(delay: float = 0.0) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "TEST_TRACE_BATCH_DELAY": str(delay)}
        code = "import sys, slow_trace; from mesdash.cli import app; sys.argv = ['mesdash', 'worker']; app()"
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _follow(job_id: str, out: list[dict[str, Any]], from_batch: int = 0) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.extend(parse(stream_job(job_id, from_batch))))
    thread.start()
    return thread


ONE_DIALECT = pytest.mark.parametrize("tiny_url", ["duckdb"], indirect=True)  # RQ mechanics: one is enough


@ONE_DIALECT
def test_rq_worker_streams_while_running_and_cancel(
    rq_worker: Callable[[float], subprocess.Popen[bytes]], tiny_warehouse: Warehouse
) -> None:
    from mesdash.trace.jobs import submit_trace

    lots = all_lots(tiny_warehouse)
    ids = sorted(lots + PADDING)
    job = submit_trace(ids, ["history", "rejects"], "none")
    messages: list[dict[str, Any]] = []
    reader = _follow(job.job_id, messages)  # the stream starts before the job does
    rq_worker(0.05)
    wait_for(lambda: job_status(job.job_id)["status"] == "started", 30, "start")
    assert job_status(job.job_id)["progress"]["pct"] < 100
    reader.join(90)
    assert not reader.is_alive()
    check_stream_shape(messages, ["history", "rejects"])
    for domain in ("history", "rejects"):
        assert canonical(stream_rows(messages, domain)) == direct(tiny_warehouse, lots, domain)

    doomed = submit_trace(ids, ["materials"], "none")
    tail: list[dict[str, Any]] = []
    wait_for(lambda: job_status(doomed.job_id)["progress"]["completed"] >= 2, 30, "progress")
    follower = _follow(doomed.job_id, tail)
    from mesdash.core.jobs import cancel

    assert cancel(doomed.job_id)["status"] == "cancelled"
    follower.join(30)
    assert tail[-1]["type"] == "error" and tail[-1]["code"] == "CANCELLED"
    time.sleep(0.5)
    assert job_status(doomed.job_id)["status"] == "cancelled"


@ONE_DIALECT
def test_worker_sigkill_fails_the_trace_and_a_retry_completes_without_duplicates(
    rq_worker: Callable[[float], subprocess.Popen[bytes]], tiny_warehouse: Warehouse
) -> None:
    from mesdash.settings import get_settings
    from mesdash.trace.jobs import submit_trace

    lots = all_lots(tiny_warehouse)
    ids = sorted(lots + PADDING)
    job = submit_trace(ids, ["history"], "none")
    worker = rq_worker(0.3)
    wait_for(lambda: job_status(job.job_id)["progress"]["completed"] >= 3, 60, "three batches")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    killed = time.monotonic()
    failed = wait_status(job.job_id, "failed", timeout=get_settings().job_heartbeat_stale_seconds + 5)
    assert time.monotonic() - killed <= get_settings().job_heartbeat_stale_seconds + 5
    assert failed["error"]["code"] == "WORKER_LOST"
    first: list[dict[str, Any]] = parse(stream_job(job.job_id))
    assert first[-1]["type"] == "error"
    resume = first[-1]["resume_from_batch"]

    retried = submit_trace(ids, ["history"], "none")
    assert retried.created and retried.record["attempt"] == 2
    rq_worker(0.0)
    rest: list[dict[str, Any]] = []
    _follow(job.job_id, rest, resume).join(90)
    assert rest[-1]["type"] == "complete"
    got = stream_rows(first, "history") + stream_rows(rest, "history")
    assert canonical(got) == direct(tiny_warehouse, lots, "history")
