"""Reject history on a large warehouse: a 365-day query cold (batched, chunks cached, merged
or spilled), warm, every cached view's latency, CSV export throughput, and — in the same
run — the same primary query as one monolithic statement.

    .venv/bin/python bench/reports.py --url duckdb:///var/bench/large.duckdb \
        --redis redis://127.0.0.1:6379/0 --end 2026-11-22

Runs in a fresh cache namespace and a temporary spool directory, removed at the end. The
views run ``--repeat`` times each; p50 / p95 / max are in milliseconds. ``--json PATH`` also
writes the figures (for ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _latencies(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    """The first call (computed over the dataset unless primed), then ``repeat`` more."""
    first = 1000 * _timed(fn)[0]
    samples = sorted(1000 * _timed(fn)[0] for _ in range(repeat))
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return {"first": first, "p50": statistics.median(samples), "p95": p95, "max": samples[-1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="duckdb:///var/bench/large.duckdb")
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--end", default=(date.today() - timedelta(days=1)).isoformat())
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()

    spool = tempfile.mkdtemp(prefix="mesdash-bench-spool-")
    namespace = f"bench-reports-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        MESDASH_DATABASE_URL=args.url,
        MESDASH_REDIS_URL=args.redis,
        MESDASH_CACHE_NAMESPACE=namespace,
        MESDASH_SPOOL_DIR=spool,
    )
    import mesdash.reports.reject.service as service
    import mesdash.reports.reject.views as views
    from mesdash.core.batch import Chunk
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.core.factory_day import day_of
    from mesdash.reports.reject.schemas import RejectQuery

    end = date.fromisoformat(args.end)
    query = RejectQuery(start_date=end - timedelta(days=args.days - 1), end_date=end)
    wh = Warehouse(args.url)
    out: dict[str, Any] = {"url": args.url, "start": query.start_date.isoformat(),
                           "end": query.end_date.isoformat(), "days": query.days, "repeat": args.repeat}
    print(f"reject history {query.start_date} .. {query.end_date} ({query.days} days) on {args.url}")
    try:
        cold_s, info = _timed(lambda: service.build_dataset(query, wh))
        print(
            f"cold   batched query: {cold_s:8.2f} s  rows {info.rows:,}  chunks {info.chunks}  "
            f"spilled {info.spilled}  quality {info.quality['status']}"
        )
        out.update(cold_s=cold_s, rows=info.rows, chunks=info.chunks, spilled=info.spilled,
                   quality=info.quality["status"])
        warm_s, _ = _timed(lambda: service.build_dataset(query, wh))
        out["warm_s"] = warm_s
        print(f"warm   rebuild from cached chunks: {warm_s:8.2f} s  (no warehouse query)")
        today = day_of(datetime.now())
        reuse_s, kept = _timed(lambda: service.reusable_dataset(query, today))
        out.update(reuse_s=reuse_s, reused=kept is not None)
        print(
            f"warm   POST on a closed range (dataset reused): {1000 * reuse_s:8.1f} ms  reused {kept is not None}"
        )

        mono_chunk = Chunk(0, start=query.start_date, end=query.end_date)
        mono_s, mono = _timed(lambda: service.chunk_query(wh, query)(mono_chunk, None))
        print(f"one monolithic statement: {mono_s:8.2f} s  rows {mono.num_rows:,}  (same SQL, whole range)")
        out.update(mono_s=mono_s, mono_rows=mono.num_rows)
        del mono

        qid = info.query_id
        prime_s, _ = _timed(lambda: views.prime(qid))
        out["prime_s"] = prime_s
        print(f"prime the page's first-load views (summary, trend, 3 paretos, list page 1): {prime_s:6.2f} s")
        top = views.pareto(qid, "reason")["items"][0]["item"]
        picked = views.ViewFilters.of({"reason": [top]})
        cases: dict[str, Callable[[], Any]] = {
            "summary": lambda: views.summary(qid),
            "summary (cross-filtered)": lambda: views.summary(qid, picked),
            "trend day": lambda: views.trend(qid, "day"),
            "trend month": lambda: views.trend(qid, "month"),
            "reason pareto": lambda: views.pareto(qid, "reason"),
            "reason pareto (defect, top 80 %)": lambda: views.pareto(qid, "reason", None, "defect", True),
            "package pareto (cross-filtered)": lambda: views.pareto(qid, "package", picked),
            "machine pareto": lambda: views.pareto(qid, "machine"),
            "list page 1 (-TXNDATE)": lambda: views.rows_page(qid, 1, 50, "-TXNDATE"),
            "list page 500 (-CHARGED_OFF_QTY)": lambda: views.rows_page(qid, 500, 100, "-CHARGED_OFF_QTY"),
        }
        out["views"] = {}
        print(f"views (ms): first call — computed over the dataset unless primed — then {args.repeat} more")
        for name, fn in cases.items():
            lat = _latencies(fn, args.repeat)
            out["views"][name] = lat
            print(
                f"  {name:34s} first {lat['first']:7.1f}  p50 {lat['p50']:6.1f}  "
                f"p95 {lat['p95']:6.1f}  max {lat['max']:6.1f}"
            )

        def export() -> tuple[int, int]:
            size = lines = 0
            for part in views.export_csv(qid):
                size += len(part)
                lines += part.count(b"\r\n")
            return size, lines

        export_s, (size, lines) = _timed(export)
        out["export"] = {"seconds": export_s, "rows": lines - 1, "mb": size / 2**20,
                         "rows_per_s": (lines - 1) / export_s}
        print(
            f"export CSV: {export_s:8.2f} s  {lines - 1:,} rows  {size / 2**20:.1f} MB  "
            f"{(lines - 1) / export_s:,.0f} rows/s  {size / 2**20 / export_s:.1f} MB/s"
        )
        print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    finally:
        wh.close()
        drop_run_state(namespace, spool)


def drop_run_state(namespace: str, spool: str | Path) -> None:
    """Remove what a bench run left: its cache namespace in Redis and its spool folder."""
    from mesdash.core.redis_client import get_redis

    client = get_redis()
    if client is not None:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for first in range(0, len(keys), 500):
            client.delete(*keys[first : first + 500])
    shutil.rmtree(spool, ignore_errors=True)


if __name__ == "__main__":
    main()
