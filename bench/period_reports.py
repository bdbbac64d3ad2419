"""Hold history, equipment history and equipment jobs on a large warehouse: each primary
query cold (batched, chunks cached, merged or spilled), warm, the same query as one
monolithic statement, every cached view's latency and CSV export throughput.

    .venv/bin/python bench/period_reports.py --url duckdb:///var/bench/large.duckdb \
        --redis redis://127.0.0.1:6379/0 --end 2026-11-22

Runs in a fresh cache namespace and a temporary spool directory, removed at the end.
``--json PATH`` also writes the figures (for ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from reports import _latencies, _timed, drop_run_state  # bench/reports.py: the same helpers


def _export(chunks: Iterator[bytes]) -> tuple[int, int]:
    size = lines = 0
    for part in chunks:
        size += len(part)
        lines += part.count(b"\r\n")
    return size, lines - 1


def _report(name: str, build: Callable[[], Any], mono: Callable[[], Any], cases: Callable[[str], dict[str, Any]],
            export: Callable[[str], Iterator[bytes]], repeat: int) -> dict[str, Any]:
    cold_s, info = _timed(build)
    print(f"{name}: cold batched query {cold_s:7.2f} s  rows {info.rows:,}  chunks {info.chunks}  "
          f"spilled {info.spilled}  quality {info.quality['status']}")
    warm_s, _ = _timed(build)
    print(f"{name}: warm rebuild from cached chunks {warm_s:7.2f} s")
    mono_s, rows = _timed(mono)
    print(f"{name}: one monolithic statement {mono_s:7.2f} s  rows {rows:,}")
    views: dict[str, dict[str, float]] = {}
    for label, fn in cases(info.query_id).items():
        lat = _latencies(fn, repeat)
        views[label] = lat
        print(f"  {label:34s} first {lat['first']:7.1f}  p50 {lat['p50']:6.1f}  p95 {lat['p95']:6.1f} ms")
    export_s, (size, lines) = _timed(lambda: _export(export(info.query_id)))
    print(f"  export CSV {export_s:6.2f} s  {lines:,} rows  {size / 2**20:.1f} MB  {lines / max(export_s, 1e-9):,.0f} rows/s")
    return {"name": name, "cold_s": cold_s, "rows": info.rows, "chunks": info.chunks, "spilled": info.spilled,
            "quality": info.quality["status"], "warm_s": warm_s, "mono_s": mono_s, "mono_rows": rows,
            "views": views, "export": {"seconds": export_s, "rows": lines, "mb": size / 2**20,
                                       "rows_per_s": lines / max(export_s, 1e-9)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="duckdb:///var/bench/large.duckdb")
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--end", default=(date.today() - timedelta(days=1)).isoformat())
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()

    spool = tempfile.mkdtemp(prefix="mesdash-bench-spool-")
    namespace = f"bench-period-{uuid.uuid4().hex[:8]}"
    os.environ.update(MESDASH_DATABASE_URL=args.url, MESDASH_REDIS_URL=args.redis,
                      MESDASH_CACHE_NAMESPACE=namespace, MESDASH_SPOOL_DIR=spool)
    from mesdash.core.batch import Chunk
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.reports.hold import service as hold
    from mesdash.reports.hold import views as hold_views
    from mesdash.reports.hold.schemas import HoldQuery, HoldSelection
    from mesdash.reports.jobs import service as jobs
    from mesdash.reports.jobs import views as job_views
    from mesdash.reports.jobs.schemas import JobQuery, JobSelection
    from mesdash.reports.resource import service as res
    from mesdash.reports.resource import views as res_views
    from mesdash.reports.resource.schemas import ResourceQuery, ResourceSelection

    end = date.fromisoformat(args.end)
    start = end - timedelta(days=args.days - 1)
    whole = Chunk(0, start=start, end=end)
    wh = Warehouse(args.url)
    print(f"{start} .. {end} ({args.days} days) on {args.url}")
    try:
        hq = HoldQuery(start_date=start, end_date=end)
        sel = HoldSelection(record_type="new,on_hold,released")
        out: dict[str, Any] = {"url": args.url, "start": start.isoformat(), "end": end.isoformat(),
                               "days": args.days, "repeat": args.repeat}
        out["hold"] = _report("hold history", lambda: hold.build(hq, wh), lambda: hold.chunk_query(wh)(whole, None).num_rows,
                lambda q: {"trend (3 types)": lambda: hold_views.trend(q),
                           "summary / KPI cards": lambda: hold_views.summary(q, sel),
                           "reason pareto": lambda: hold_views.pareto(q, sel),
                           "durations": lambda: hold_views.durations(q, sel),
                           "list page 1": lambda: hold_views.rows_page(q, sel, 1, 50)},
                lambda q: hold_views.export_csv(q, sel), args.repeat)

        rq = ResourceQuery(start_date=start, end_date=end)
        rsel = ResourceSelection(granularity="week")
        out["resource"] = _report("equipment history", lambda: res.build(rq, wh),
                lambda: res.chunk_query(wh, rq)(whole, None).num_rows,
                lambda q: {"summary": lambda: res_views.summary(q, rsel),
                           "trend (week)": lambda: res_views.trend(q, rsel),
                           "heatmap (week)": lambda: res_views.heatmap(q, rsel),
                           "detail page 1": lambda: res_views.detail(q, rsel, 1, 50)},
                lambda q: res_views.export_csv(q, rsel), args.repeat)

        busiest = [r["RESOURCEID"] for r in wh.read_sql_df(
            "SELECT RESOURCEID, COUNT(*) AS N FROM dwh.DW_MES_JOB GROUP BY RESOURCEID ORDER BY N DESC, RESOURCEID "
            "FETCH FIRST 50 ROWS ONLY").to_dicts()]
        jq = JobQuery(start_date=start, end_date=end, machines=busiest)
        jsel = JobSelection()
        out["jobs"] = _report("equipment jobs (50 machines)", lambda: jobs.build(jq, wh),
                lambda: jobs.chunk_query(wh, jq)(whole, None).num_rows,
                lambda q: {"jobs page 1": lambda: job_views.jobs_page(q, jsel, 1, 50),
                           "breakdown per machine": lambda: job_views.breakdown(q, jsel, "machine")},
                lambda q: job_views.export_csv(q, jsel), args.repeat)
        print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        out.update(job_machines=len(busiest), peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    finally:
        wh.close()
        drop_run_state(namespace, spool)


if __name__ == "__main__":
    main()
