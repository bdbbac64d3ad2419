"""Wall time of each query-tool lookup on a large warehouse (issue 10).

    MESDASH_SPOOL_DIR=/tmp/qt-bench .venv/bin/python bench/querytool.py \
        --url duckdb:///var/bench/large.duckdb

One cold run each (no Redis: chunks in the process L1): split / merge history fast mode
(window ending the day after the data's last transaction) against the full scan the job
runs, adjacent lots of one lot, lot → equipment for 100 lot names, recent jobs of a
machine, and the equipment period of the first 50 machines by id — E10 hours over 730 days,
folded loads over 365 days and materials over 90 days, through the batch engine (31-day chunks).
``--json PATH`` also writes each lookup's seconds and result (for ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

LOOKUPS: list[dict[str, Any]] = []


def timed(label: str, fn: Callable[[], Any], describe: Callable[[Any], str]) -> None:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<48} {seconds:8.2f} s  {describe(result)}", flush=True)
    LOOKUPS.append({"label": label, "seconds": seconds, "result": describe(result)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="duckdb:///var/bench/large.duckdb")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()

    from mesdash.core.db.warehouse import Warehouse
    from mesdash.querytool import period, service, split_merge
    from mesdash.querytool.lot_equipment import lot_equipment
    from mesdash.querytool.schemas import EquipmentPeriodRequest

    wh = Warehouse(args.url)
    one = wh.read_sql_df_slow
    last_txn = one("SELECT MAX(TXNDATE) FROM dwh.DW_MES_HM_LOTMOVEOUT").rows[0][0]
    split_lot = one(
        "SELECT FROMCONTAINERID FROM dwh.DW_MES_HM_LOTMOVEOUT WHERE CDONAME = 'SplitLot' AND TXNDATE >= :t "
        "FETCH FIRST 1 ROWS ONLY",
        {"t": last_txn - timedelta(days=30)},
    ).rows[0][0]
    names = [
        r[0]
        for r in one(
            "SELECT CONTAINERNAME FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT' AND SPLITFROMID IS NOT NULL "
            "ORDER BY CONTAINERID FETCH FIRST 100 ROWS ONLY"
        ).rows
    ]
    busiest = [
        r[0]
        for r in one(
            "SELECT RESOURCEID FROM dwh.DW_MES_RESOURCE WHERE OBJECTCATEGORY IN ('ASSEMBLY', 'WAFERSORT') "
            "ORDER BY RESOURCEID FETCH FIRST 50 ROWS ONLY"
        ).rows
    ]
    end = last_txn.date()
    print(f"warehouse {args.url}; data ends {end}; lot {split_lot}; {len(busiest)} machines")

    timed(
        "split/merge fast (183 days, ≤ 500 rows)",
        lambda: split_merge.fast_history(wh, split_lot, now=lambda: last_txn + timedelta(days=1)),
        lambda r: f"{r['count']} rows",
    )
    timed(
        "split/merge full scan (the job's query)",
        lambda: one(
            wh.sql("querytool/split_merge_full"),
            {"container_id": split_lot, "cdo_split": "SplitLot", "cdo_combine": "CombineLot"},
        ),
        lambda r: f"{len(r)} rows",
    )
    timed(
        "adjacent lots (every track-in of the lot)",
        lambda: service.adjacent_lots(wh, split_lot),
        lambda r: f"{len(r['anchors'])} anchors, {sum(len(a['lots']) for a in r['anchors'])} rows",
    )
    timed(
        "lot → equipment (100 split lots, parents ≤ 10)",
        lambda: lot_equipment(wh, "lot_id", names),
        lambda r: f"{r['count']} rows, {len(r['diagnostics']['lots_using_parents'])} lots use parents",
    )
    timed(
        "recent jobs (30 days, top 5)",
        lambda: service.recent_jobs(wh, busiest[0], as_of=end),
        lambda r: f"{r['count']} jobs",
    )
    for query_type, days in (("status_hours", 730), ("lots", 365), ("materials", 90)):
        request = EquipmentPeriodRequest(
            equipment_ids=busiest,
            start_date=end - timedelta(days=days - 1),
            end_date=end,
            query_type=query_type,
        )
        timed(
            f"equipment period {query_type}, 50 machines, {days} d",
            functools.partial(period.build, wh, request),
            lambda info: f"{info.rows} rows in {info.chunks} chunks, spilled={info.spilled}",
        )
    wh.close()
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"url": args.url, "data_end": end.isoformat(), "lot": split_lot, "machines": len(busiest),
             "lookups": LOOKUPS}, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
