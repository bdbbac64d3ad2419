"""A large trace as a job (RQ worker → Parquet parts → NDJSON stream) against the inline
fetch-everything baseline: peak RSS, time to the first row, total time.

    .venv/bin/python bench/trace_memory.py --url duckdb:///var/bench/large.duckdb --ids 114000

Needs Redis (``--redis``, default the local one); uses a namespace and spool of its own.
- baseline (child process): every domain fetched whole into pandas (batches of 1000 ids,
  fetchall each, as the incident's code did), grouped per lot — the first row is usable
  only when everything is in. ``--baseline-ids`` runs it on fewer ids when the full
  baseline would take too long (its rows are then not compared with the job's).
- job: a ``mesdash worker --simple`` process runs the trace job (its RSS is polled: peak);
  a "web" child process submits the job and reads the whole NDJSON stream
  (``stream_job``): time to the first ``records`` line, total time, its peak RSS growth.
  Both run with the settings' defaults (``DUCKDB_MEMORY_LIMIT``, ``TRACE_JOB_*``); the
  worker's log goes to ``{spool}/worker.log``.
``--json PATH`` also writes the figures (and those settings) for ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from events_memory import _ids  # the same spread of lot ids as that bench


def _rss_mb(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(url: str, count: int, domains: list[str]) -> dict[str, object]:
    import pandas as pd

    from mesdash.core.db.query_builder import QueryBuilder
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.trace.events import DOMAINS

    ids = _ids(url, count)
    wh = Warehouse(url)
    start_rss = _rss_mb()
    start = time.monotonic()
    rows: dict[str, int] = {}
    kept = {}
    for domain in domains:
        spec = DOMAINS[domain]
        columns: list[str] = []
        fetched: list[tuple[object, ...]] = []
        for i in range(0, len(ids), 1000):  # the incident's code: batches of 1000, fetchall each
            qb = QueryBuilder(in_batch_size=1000)
            sql = wh.sql(spec.sql, cid_filter=qb.in_condition(spec.id_column, ids[i : i + 1000]))
            res = wh.read_sql_df_slow(sql, {**qb.params, **spec.params}, timeout_seconds=3600)
            columns = list(res.columns)
            fetched.extend(res.rows)
        frame = pd.DataFrame(fetched, columns=columns)
        del fetched
        kept[domain] = {cid: g.to_dict("records") for cid, g in frame.groupby("CONTAINERID")}
        rows[domain] = len(frame)
    seconds = time.monotonic() - start
    return {"rows": rows, "first_row_s": round(seconds, 2), "total_s": round(seconds, 2),
            "peak_growth_mb": round(_peak_mb() - start_rss, 1), "peak_mb": round(_peak_mb(), 1)}


def web(url: str, count: int, domains: list[str], worker_pid: int) -> dict[str, object]:
    """Submit the trace job, read its whole stream; poll the worker's RSS meanwhile."""
    from mesdash.trace.jobs import submit_trace
    from mesdash.trace.stream import stream_job

    ids = sorted(_ids(url, count))
    worker_peak = [0.0]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.2):
            try:
                worker_peak[0] = max(worker_peak[0], _rss_mb(worker_pid))
            except Exception:
                return

    threading.Thread(target=poll, daemon=True).start()
    start_rss = _rss_mb()
    start = time.monotonic()
    job = submit_trace(ids, domains, "none")
    first = None
    quality: dict[str, object] = {}
    rows: dict[str, int] = dict.fromkeys(domains, 0)
    last: dict[str, object] = {}
    for line in stream_job(job.job_id):
        message = json.loads(line)
        if message["type"] == "quality":
            quality = message
        if message["type"] == "records":
            if first is None:
                first = time.monotonic() - start
            rows[message["domain"]] += len(message["rows"])
        last = message
    total = time.monotonic() - start
    done.set()
    assert last.get("type") == "complete", last
    assert quality.get("status") == "complete", quality  # no failed batch (e.g. out of memory)
    return {"rows": rows, "first_row_s": round(first or total, 2), "total_s": round(total, 2),
            "web_peak_growth_mb": round(_peak_mb() - start_rss, 1),
            "worker_peak_mb": round(worker_peak[0], 1), "job_id": job.job_id}


def _child(mode: str, args: argparse.Namespace, env: dict[str, str], ids: int, *extra: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", args.url, "--ids", str(ids),
         "--domains", args.domains, *extra],
        check=False, capture_output=True, text=True, env=env,
    )
    if done.returncode:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _total(rows: Any) -> int:
    return sum(int(v) for v in rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="duckdb:///var/bench/large.duckdb")
    parser.add_argument("--ids", type=int, default=114_000)
    parser.add_argument("--baseline-ids", type=int, default=0, help="ids for the baseline (default: --ids)")
    parser.add_argument("--domains", default="history,upstream_history")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--worker-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    domains = args.domains.split(",")
    if args.child == "baseline":
        print(json.dumps(baseline(args.url, args.ids, domains)))
        return
    if args.child == "web":
        print(json.dumps(web(args.url, args.ids, domains, args.worker_pid)))
        return

    spool = tempfile.mkdtemp(prefix="mesdash-bench-trace-")
    env = {**os.environ, "MESDASH_ENV": "development", "MESDASH_DATABASE_URL": args.url,
           "MESDASH_REDIS_URL": args.redis, "MESDASH_SPOOL_DIR": spool,
           "MESDASH_CACHE_NAMESPACE": f"mesdash-bench-{uuid.uuid4().hex[:8]}"}
    log_file = Path(spool, "worker.log").open("wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([sys.executable, "-m", "mesdash.cli", "worker", "trace-events", "--simple"],
                              env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        time.sleep(5)  # the worker is up and waiting, as in production
        job = _child("web", args, env, args.ids, "--worker-pid", str(worker.pid))
    finally:
        worker.terminate()
        worker.wait(30)
        log_file.close()
    print("job:", json.dumps(job), flush=True)  # kept even if the baseline runs out of memory
    base_ids = args.baseline_ids or args.ids
    # the incident's code ran without a DuckDB cap
    base = _child("baseline", args, {**env, "DUCKDB_MEMORY_LIMIT": ""}, base_ids)
    print("baseline:", json.dumps(base), flush=True)
    if base_ids == args.ids:
        assert job["rows"] == base["rows"], (job["rows"], base["rows"])
    rows, base_rows = _total(job["rows"]), _total(base["rows"])
    print(f"| variant | ids | rows | first row | total | peak RSS |  (domains {args.domains})")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| inline (pandas, fetchall) | {base_ids:,} | {base_rows:,} | {base['first_row_s']} s | "
          f"{base['total_s']} s | {base['peak_mb']} MB (+{base['peak_growth_mb']} MB) |")
    print(f"| job: RQ worker | {args.ids:,} | {rows:,} | — | {job['total_s']} s | {job['worker_peak_mb']} MB |")
    print(f"| job: web streaming | {args.ids:,} | {rows:,} | {job['first_row_s']} s | {job['total_s']} s | "
          f"+{job['web_peak_growth_mb']} MB |")
    print(f"(spool {spool}; remove it when done)")
    if args.json:
        from mesdash.settings import get_settings

        settings = get_settings()
        Path(args.json).write_text(json.dumps(
            {"url": args.url, "ids": args.ids, "baseline_ids": base_ids, "domains": domains,
             "rows": rows, "baseline_rows": base_rows, "rows_compared": base_ids == args.ids,
             "settings": {"DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
                          "DUCKDB_REOPEN_ABOVE": settings.duckdb_reopen_above,
                          "TRACE_JOB_FIRST_BATCH_SIZE": settings.trace_job_first_batch_size,
                          "TRACE_JOB_ID_BATCH_SIZE": settings.trace_job_id_batch_size},
             "job": job, "baseline": base}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
