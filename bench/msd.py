"""End-to-end time and peak memory per stage of a defect analysis (issue 9).

    .venv/bin/python bench/msd.py --url duckdb:///var/bench/large.duckdb \
        --start 2026-04-01 --end 2026-08-31 --station 測試

Runs ``mesdash.msd.service.compute`` once (no cache) and samples the process RSS every
20 ms; prints per stage (detection, genealogy + upstream events, attribution) its seconds
and the peak RSS growth over the start, the cohort size and the top suspects next to the
warehouse manifest's planted excursions. ``--json PATH`` also writes them (with the
``MSD_SEED_BATCH_SIZE`` in effect) for ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import psutil


class Sampler:
    """Peak RSS (MB) since the last ``mark``."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.rss()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def rss(self) -> float:
        return float(self.proc.memory_info().rss) / 2**20

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.rss())

    def mark(self) -> float:
        peak, self.peak = max(self.peak, self.rss()), self.rss()
        return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="duckdb:///var/bench/large.duckdb")
    parser.add_argument("--start", default="2026-04-01")
    parser.add_argument("--end", default="2026-08-31")
    parser.add_argument("--station", default="測試")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()

    from mesdash.core.db.warehouse import Warehouse
    from mesdash.msd.schemas import AnalysisParams
    from mesdash.msd.service import compute
    from mesdash.synth.manifest import load_manifest

    wh = Warehouse(args.url)
    params = AnalysisParams(
        start_date=date.fromisoformat(args.start), end_date=date.fromisoformat(args.end), station=args.station
    )
    sampler = Sampler()
    base = sampler.rss()
    stages: list[dict[str, Any]] = []
    t0 = last = time.perf_counter()
    current = ["start"]

    def stage(name: str, done: int, total: int) -> None:
        nonlocal last
        now = time.perf_counter()
        stages.append({"stage": current[0], "seconds": now - last, "peak_mb": sampler.mark() - base})
        current[0], last = name, now

    result = compute(wh, params, stage)["summary"]
    total = time.perf_counter() - t0
    sampler.stop.set()
    print(f"warehouse {args.url}  station {args.station}  {args.start} .. {args.end}")
    for s in stages[1:]:
        print(f"  {s['stage']:<12} {s['seconds']:8.1f} s   peak RSS +{s['peak_mb']:7.0f} MB")
    print(f"  {'total':<12} {total:8.1f} s   start RSS {base:.0f} MB")
    kpi = result["kpi"]
    print(
        f"cohort: {kpi['lots']:,} lots, {kpi['defective_lots']:,} defective, input {kpi['input_qty']:,.0f}, "
        f"defects {kpi['defect_qty']:,.0f}; quality {result['quality']['status']}"
    )
    for s in result["suspects"][:5]:
        print(
            f"  #{s['rank']} {s['dimension']:<17} {s['name']:<22} lots {s['lot_count']:>6} "
            f"lift {s['lift']}  p {s['p_value']:.2e}  q {s['q_value']:.2e}"
        )
    manifest = load_manifest(wh) or {}
    planted = []
    for e in manifest.get("excursions", []):
        print(
            f"  planted {e['kind']}: {e.get('resource_name') or e.get('material_lot') or e.get('wafer_lot')}"
        )
        planted.append({"kind": e["kind"],
                        "name": e.get("resource_name") or e.get("material_lot") or e.get("wafer_lot")})
    wh.close()
    if args.json:
        from mesdash.settings import get_settings

        suspects = [{k: s[k] for k in ("rank", "dimension", "name", "lot_count", "lift", "p_value", "q_value")}
                    for s in result["suspects"][:5]]
        Path(args.json).write_text(json.dumps(
            {"url": args.url, "station": args.station, "start": args.start, "end": args.end,
             "seed_batch_size": get_settings().msd_seed_batch_size,
             "stages": stages[1:], "total_s": total, "start_rss_mb": base,
             "kpi": kpi, "quality": result["quality"]["status"], "suspects": suspects, "planted": planted},
            indent=2, ensure_ascii=False, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
