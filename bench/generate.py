"""Time the synthetic fab generator: each scale into a fresh temporary DuckDB file.

    .venv/bin/python bench/generate.py --scales demo,large

Each scale runs in its own process so its peak RSS (generator and DuckDB together) is its
own; prints seconds, peak RSS and total rows per scale. ``--json PATH`` also writes them (with
the manifest's lot counts and the index build's share of the time) for ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path


def _child(scale: str, path: Path, seed: int, end: str) -> None:
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.synth import generate

    stage_at: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        stage_at.setdefault(f"{stage}:{done}", time.monotonic() - start)
        print(f"  {scale}: {stage} {done}/{total} at {time.monotonic() - start:.0f}s",
              file=sys.stderr, flush=True)

    start = time.monotonic()
    wh = Warehouse(f"duckdb:///{path}", read_only=False)
    try:
        manifest = generate(wh, scale=scale, seed=seed, end_date=date.fromisoformat(end),
                            progress=progress)
    finally:
        wh.close()
    seconds = time.monotonic() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    index_s = stage_at.get("indexes:1", seconds) - stage_at.get("indexes:0", seconds)
    print(json.dumps({"scale": scale, "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb),
                      "rows": sum(manifest["row_counts"].values()),
                      "file_mb": round(path.stat().st_size / 2**20),
                      "lots": manifest.get("lots", {}), "row_counts": manifest["row_counts"],
                      "index_seconds": round(index_s, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="demo,large")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end-date", default=date.today().isoformat())
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--child", nargs=2, metavar=("SCALE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), args.seed, args.end_date)
        return
    print(f"{'scale':<8}{'seconds':>10}{'peak RSS MB':>14}{'rows':>14}{'file MB':>10}")
    results = []
    for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            path = Path(tmp) / f"{scale}.duckdb"
            out = subprocess.run(
                [sys.executable, __file__, "--seed", str(args.seed), "--end-date", args.end_date,
                 "--child", scale, str(path)],
                check=True, stdout=subprocess.PIPE, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{r['scale']:<8}{r['seconds']:>10}{r['peak_rss_mb']:>14}{r['rows']:>14}"
                  f"{r['file_mb']:>10}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "end_date": args.end_date, "scales": results},
                                              indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
