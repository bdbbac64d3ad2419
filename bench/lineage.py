"""Lineage benchmark: mesdash's set-at-a-time engine against a node-by-node BFS baseline.

    python bench/lineage.py [--url URL] [--sizes 10,1000,10000] [--direction backward]

The baseline walks the genealogy backward the way node-by-node tools do: one query per
node for its existence, split parent and merge sources (``lineage/baseline_node_parents``,
pooled path), each node asked once however many seeds reach it, then the same per-seed
closure in memory. Both answers are compared: the table only shows runs that agree.
mesdash runs ``--repeat`` times per size (default 5) and its median is reported, with the
fastest and slowest run; the baseline runs once (it takes minutes).

Without ``--url`` the embedded ``var/large.duckdb`` is used when it exists, else the
``demo`` scale is generated into a temporary DuckDB file (about a minute or two).
``--json PATH`` also writes the table's figures (for ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage import graph
from mesdash.lineage.service import LineageEngine

LARGE = Path("var/large.duckdb")


def open_warehouse(url: str | None, workdir: Path) -> Warehouse:
    if url:
        return Warehouse(url)
    if LARGE.exists():
        return Warehouse(f"duckdb:///{LARGE}")
    from mesdash.synth import generate

    path = workdir / "demo.duckdb"
    print(f"generating the demo warehouse in {path} …", file=sys.stderr)
    writer = Warehouse(f"duckdb:///{path}", read_only=False)
    try:
        generate(writer, scale="demo", seed=1)
    finally:
        writer.close()
    return Warehouse(f"duckdb:///{path}")


def sample_lots(wh: Warehouse, n: int) -> list[str]:
    rows = wh.read_sql_df_slow(wh.sql("lineage/bench_lot_ids")).rows
    ids = sorted(str(r[0]) for r in rows)
    return random.Random(1).sample(ids, min(n, len(ids)))


def baseline(wh: Warehouse, seeds: Sequence[str], max_depth: int) -> dict[str, list[str]]:
    """Backward: one query per node (each node asked once however many seeds reach it),
    then the same per-seed breadth-first search in memory."""
    sql = wh.sql("lineage/baseline_node_parents")
    parents: dict[str, list[tuple[str, str]]] = {}
    exists: set[str] = set()
    asked: set[str] = set()
    frontier = list(dict.fromkeys(seeds))
    for _ in range(max_depth + 1):
        following = []
        for node in frontier:
            if node in asked:
                continue
            asked.add(node)
            rows = wh.read_sql_df(sql, {"node_id": node}).rows
            if not any(kind == "self" for kind, _ in rows):
                continue
            exists.add(node)
            parents[node] = [(str(cid), str(kind)) for kind, cid in rows if kind != "self"]
            following += [cid for cid, _ in parents[node] if cid not in asked]
        frontier = following
    return {
        seed: sorted(graph.closure(seed, parents, exists, max_depth).depth) if seed in exists else []
        for seed in seeds
    }


def timed(wh: Warehouse, run: Any) -> tuple[float, int, Any]:
    before = wh.stats.count
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, wh.stats.count - before, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="warehouse URL (default: var/large.duckdb or a demo)")
    parser.add_argument("--sizes", default="10,1000,10000", help="seed counts")
    parser.add_argument("--direction", choices=["backward", "forward"], default="backward")
    parser.add_argument("--no-baseline", action="store_true", help="time mesdash only")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--repeat", type=int, default=5,
                        help="mesdash runs per size; the median is reported (a busy machine is noisy)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        wh = open_warehouse(args.url, Path(tmp))
        try:
            engine = LineageEngine(wh)
            lots = sample_lots(wh, max(sizes))
            engine.resolve(lots[:10], args.direction)  # warm the caches once
            print(f"warehouse: {wh.dialect}, {len(lots)} lots sampled, direction {args.direction}\n")
            print("| seeds | mesdash s | mesdash queries | baseline s | baseline queries | ratio | nodes |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            runs: list[dict[str, Any]] = []
            for n in sizes:
                seeds = lots[:n]
                timings = [timed(wh, lambda s=seeds: engine.resolve(s, args.direction))
                           for _ in range(max(1, args.repeat))]
                m_time = statistics.median(t for t, _, _ in timings)
                _, m_queries, result = timings[0]
                key = "descendants" if args.direction == "forward" else "ancestors"
                row = [f"{n:,}", f"{m_time:.3f}", f"{m_queries}"]
                run: dict[str, Any] = {"seeds": n, "mesdash_s": m_time, "mesdash_queries": m_queries,
                                       "mesdash_runs": len(timings),
                                       "mesdash_min_s": min(t for t, _, _ in timings),
                                       "mesdash_max_s": max(t for t, _, _ in timings),
                                       "baseline_s": None, "baseline_queries": None, "ratio": None}
                if args.no_baseline or args.direction == "forward":
                    row += ["–", "–", "–"]
                else:
                    b_time, b_queries, answer = timed(wh, lambda s=seeds: baseline(wh, s, engine.max_depth))
                    if answer != result[key]:
                        print(f"MISMATCH at {n} seeds", file=sys.stderr)
                        return 1
                    row += [f"{b_time:.3f}", f"{b_queries:,}", f"{b_time / m_time:.1f}×"]
                    run.update(baseline_s=b_time, baseline_queries=b_queries, ratio=b_time / m_time)
                row.append(f"{len(result['nodes']):,}")
                print("| " + " | ".join(row) + " |", flush=True)
                runs.append({**run, "nodes": len(result["nodes"]), "edges": len(result.get("edges", []))})
            if args.json:
                Path(args.json).write_text(json.dumps(
                    {"url": args.url, "dialect": wh.dialect, "lots_sampled": len(lots),
                     "direction": args.direction, "runs": runs}, indent=2), encoding="utf-8")
        finally:
            wh.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
