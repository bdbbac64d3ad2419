"""Peak memory of EventFetcher.fetch_events against a fetch-everything-into-pandas baseline.

    .venv/bin/python bench/events_memory.py --url duckdb:///var/bench/large.duckdb --ids 100000

Both variants run in their own child process, one after the other, on the same ids: the
baseline is the peers' approach (one DataFrame of the whole result, then grouped into
per-lot records); mesdash streams id batches through fetchmany and groups as rows arrive.
Prints rows, seconds and peak RSS growth over the child's start (after imports and the
id list) for each, and their ratio; ``--json PATH`` also writes them (for ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _ids(url: str, count: int) -> list[str]:
    from mesdash.core.db.warehouse import Warehouse

    wh = Warehouse(url)
    rows = wh.read_sql_df_slow(
        "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' ORDER BY CONTAINERID"
    ).rows
    wh.close()
    step = max(1, len(rows) // count)
    return [r[0] for r in rows[::step][:count]]


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(variant: str, url: str, count: int, domain: str) -> None:
    import os

    os.environ["EVENT_FETCHER_MAX_TOTAL_ROWS"] = str(10**9)  # measure, don't truncate
    from mesdash.core.db.query_builder import QueryBuilder
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.trace.events import DOMAINS, EventFetcher

    ids = _ids(url, count)
    wh = Warehouse(url)
    start_rss = _rss_mb()
    start = time.monotonic()
    if variant == "mesdash":
        result = EventFetcher(wh).fetch_events(ids, domain)
        rows = sum(len(v) for v in result["records_by_cid"].values())
    else:
        import pandas as pd

        spec = DOMAINS[domain]
        qb = QueryBuilder(in_batch_size=1000)
        sql = wh.sql(spec.sql, cid_filter=qb.in_condition(spec.id_column, ids))
        res = wh.read_sql_df_slow(sql, {**qb.params, **spec.params}, timeout_seconds=3600)  # fetchall, as peers
        frame = pd.DataFrame(res.rows, columns=res.columns)
        del res
        grouped = {cid: g.to_dict("records") for cid, g in frame.groupby("CONTAINERID")}
        rows = sum(len(v) for v in grouped.values())
    seconds = time.monotonic() - start
    print(json.dumps({"variant": variant, "rows": rows, "seconds": round(seconds, 2),
                      "peak_growth_mb": round(_peak_mb() - start_rss, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="duckdb:///var/bench/large.duckdb")
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--domain", default="rejects")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.ids, args.domain)
        return
    results = {}
    for variant in ("pandas", "mesdash"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--url", args.url, "--ids", str(args.ids),
             "--domain", args.domain],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        results[variant] = json.loads(out)
    base, ours = results["pandas"], results["mesdash"]
    assert base["rows"] == ours["rows"], "both variants must return the same rows"
    print("| domain | ids | rows | pandas peak growth | mesdash peak growth | ratio | pandas s | mesdash s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.domain} | {args.ids:,} | {ours['rows']:,} | {base['peak_growth_mb']} MB | "
          f"{ours['peak_growth_mb']} MB | {base['peak_growth_mb'] / max(ours['peak_growth_mb'], 1):.1f}× | "
          f"{base['seconds']} | {ours['seconds']} |")
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps(
            {"url": args.url, "domain": args.domain, "ids": args.ids, "rows": ours["rows"],
             "pandas": base, "mesdash": ours,
             "memory_ratio": base["peak_growth_mb"] / max(ours["peak_growth_mb"], 1),
             "time_ratio": base["seconds"] / max(ours["seconds"], 1e-3)}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
