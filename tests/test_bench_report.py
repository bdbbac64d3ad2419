"""bench/report.py renders docs/benchmarks.md from the benches' JSON: every section's table
holds the fixture's figures, and every "met" / "not met" follows from them."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


report = _load()


def _section(runs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {"started": "2026-11-23 15:00 UTC", "quick": False, "seconds": 321.0,
            "load_before": [4.2, 3.0, 2.0], "load_after": [6.5, 4.0, 3.0],
            "runs": [{"label": label, "command": f".venv/bin/python bench/x.py --{label}", "seconds": 100.0,
                      "log": "var/bench/report/x.log", "result": result, "error": None}
                     for label, result in runs]}


def _views(*p95: float) -> dict[str, dict[str, float]]:
    return {f"view {i}": {"first": 2500.0 + i, "p50": p / 2, "p95": p, "max": p + 1} for i, p in enumerate(p95)}


def _period(cold: float, mono: float, warm: float, rows: int, spilled: bool) -> dict[str, Any]:
    return {"name": "x", "cold_s": cold, "rows": rows, "chunks": 12, "spilled": spilled, "quality": "complete",
            "warm_s": warm, "mono_s": mono, "mono_rows": rows, "views": {"summary": {"first": 400.0, "p50": 370.0,
                                                                                      "p95": 380.0, "max": 390.0}},
            "export": {"seconds": 10.0, "rows": rows, "mb": 20.0, "rows_per_s": 53_000.0}}


def fixture() -> dict[str, Any]:
    lineage: dict[str, Any] = {"url": "duckdb:///var/bench/large.duckdb", "dialect": "duckdb", "lots_sampled": 10000,
               "direction": "backward", "runs": [
                   {"seeds": 10, "mesdash_s": 0.185, "mesdash_queries": 2, "baseline_s": 0.392,
                    "baseline_queries": 15, "ratio": 0.392 / 0.185, "nodes": 26, "edges": 20},
                   {"seeds": 10000, "mesdash_s": 1.091, "mesdash_queries": 3, "baseline_s": 135.5,
                    "baseline_queries": 17675, "ratio": 135.5 / 1.091, "nodes": 28121, "edges": 30000}]}
    demo = copy.deepcopy(lineage)
    demo["runs"][1].update(mesdash_s=0.459, baseline_s=49.7, ratio=49.7 / 0.459, nodes=9876,
                           mesdash_runs=5, mesdash_min_s=0.41, mesdash_max_s=0.73)
    msd_stages = [("detection", 17.6, 987.0), ("genealogy", 448.5, 5144.0), ("attribution", 71.1, 6037.0)]
    planted = [{"kind": "machine", "name": "GWBC-0201"}, {"kind": "material", "name": "207022-14-002"}]

    def msd(batch: int, factor: float, top: str) -> dict[str, Any]:
        return {"url": "duckdb:///var/bench/large.duckdb", "station": "測試", "start": "2026-04-01",
                "end": "2026-08-31", "seed_batch_size": batch,
                "stages": [{"stage": n, "seconds": t * factor, "peak_mb": mb / factor} for n, t, mb in msd_stages],
                "total_s": 548.0 * factor, "start_rss_mb": 219.0,
                "kpi": {"lots": 424901, "defective_lots": 190123, "input_qty": 1.0, "defect_qty": 1.0},
                "quality": "complete", "planted": planted,
                "suspects": [{"rank": 1, "dimension": "material_lot", "name": top, "lot_count": 11000,
                              "lift": 2.13, "p_value": 0.0, "q_value": 0.0}]}

    return {"meta": {
        "command": ".venv/bin/python bench/report.py", "started": "2026-11-23 15:00 UTC",
        "finished": "2026-11-23 17:00 UTC", "seconds": 7200, "quick": False, "only": None,
        "machine": {"cores": 2, "ram_gib": 23.4, "os": "Debian GNU/Linux 12 (bookworm), Linux 6.1",
                    "cpu": "Example CPU @ 2.10GHz", "python": "3.11.7", "duckdb": "2.0.0",
                    "postgresql": "15.20 (server)", "hostname": "box", "commit": "6741108-dirty"},
        "large_warehouse": {"path": "var/bench/large.duckdb", "seed": 7, "end_date": "2026-11-22",
                            "rows": 46_711_177, "containers": 1_394_493}},
        "sections": {
            "generate": _section([("demo, large", {"seed": 1, "end_date": "2026-11-22", "scales": [
                {"scale": "demo", "seconds": 14.2, "peak_rss_mb": 900, "rows": 2_379_634, "file_mb": 300,
                 "index_seconds": 2.5, "row_counts": {"DW_MES_CONTAINER": 70_201},
                 "lots": {"ga_lots": 34000, "split_children": 15542, "gd_lots": 1215, "finished_lots": 9090}},
                {"scale": "large", "seconds": 1500.0, "peak_rss_mb": 2246, "rows": 46_711_177, "file_mb": 3205,
                 "index_seconds": 30.0, "row_counts": {"DW_MES_CONTAINER": 1_394_493},
                 "lots": {"ga_lots": 680000, "split_children": 303217, "gd_lots": 24037,
                          "finished_lots": 180362}}]})]),
            "lineage": _section([("DuckDB large", lineage), ("DuckDB demo", demo)]),
            "events": _section([("large", {"url": "u", "domain": "rejects", "ids": 100000, "rows": 167636,
                                           "pandas": {"rows": 167636, "seconds": 1455.0, "peak_growth_mb": 685.0},
                                           "mesdash": {"rows": 167636, "seconds": 22.0, "peak_growth_mb": 349.0},
                                           "memory_ratio": 685 / 349, "time_ratio": 1455 / 22})]),
            "trace": _section([("large", {
                "url": "u", "ids": 114000, "baseline_ids": 20000, "domains": ["history", "upstream_history"],
                "rows": 2_222_820, "baseline_rows": 444_564, "rows_compared": False,
                "settings": {"DUCKDB_MEMORY_LIMIT": "1GiB", "TRACE_JOB_FIRST_BATCH_SIZE": 100,
                             "TRACE_JOB_ID_BATCH_SIZE": 1000},
                "job": {"rows": {}, "first_row_s": 1.2, "total_s": 114.9, "web_peak_growth_mb": 88.0,
                        "worker_peak_mb": 1325.0, "job_id": "j"},
                "baseline": {"rows": {}, "first_row_s": 105.4, "total_s": 105.4, "peak_growth_mb": 1254.8,
                             "peak_mb": 1605.0}})]),
            "reports": _section([("large", {
                "url": "u", "start": "2025-11-23", "end": "2026-11-22", "days": 365, "repeat": 30,
                "cold_s": 83.7, "rows": 1_855_212, "chunks": 12, "spilled": True, "quality": "complete",
                "warm_s": 11.5, "reuse_s": 0.155, "reused": True, "mono_s": 62.8, "mono_rows": 1_855_212,
                "prime_s": 7.9, "views": _views(8.5, 16.0, 141.0),
                "export": {"seconds": 82.0, "rows": 1_855_212, "mb": 300.0, "rows_per_s": 22_600.0},
                "peak_rss_mb": 3000.0})]),
            "querytool": _section([("large", {"url": "u", "data_end": "2026-11-22", "lot": "x", "machines": 50,
                                              "lookups": [
                {"label": "split/merge fast (183 days, ≤ 500 rows)", "seconds": 0.09, "result": "2 rows"},
                {"label": "split/merge full scan (the job's query)", "seconds": 0.27, "result": "2 rows"},
                {"label": "equipment period lots, 50 machines, 365 d", "seconds": 6.51,
                 "result": "97378 rows in 12 chunks, spilled=False"}]})]),
            "msd": _section([("whole cohort at once", msd(10_000_000, 1.0, "207022-14-002")),
                             ("shipped, seeds in batches", msd(5000, 2.0, "NOT-PLANTED-7"))]),
            "period_reports": _section([("large", {
                "url": "u", "start": "2025-11-23", "end": "2026-11-22", "days": 365, "repeat": 10,
                "hold": _period(28.6, 9.8, 0.63, 187_688, False),
                "resource": _period(164.8, 81.8, 3.1, 1_389_190, True),
                "jobs": _period(8.5, 2.3, 0.32, 51_168, False), "job_machines": 50, "peak_rss_mb": 3250.0})]),
        }}


def _section_text(doc: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?(?=^## |\Z)", doc, re.M | re.S)
    assert match, heading
    return match.group(0)


@pytest.fixture(scope="module")
def doc() -> str:
    return str(report.render(fixture()))


def test_header_names_machine_command_and_regeneration(doc: str) -> None:
    head = doc.split("## ")[0]
    assert "`.venv/bin/python bench/report.py`" in head  # says which command regenerates it
    for text in ("2 cores", "23.4 GiB RAM", "Example CPU @ 2.10GHz", "Debian GNU/Linux 12", "Python 3.11.7",
                 "DuckDB 2.0.0", "PostgreSQL 15.20 (server)", "2026-11-23 15:00 UTC", "6741108-dirty",
                 "46.7M rows", "(120.0 min)"):
        assert text in head, text
    assert "Quick run" not in head


def test_generate_table_and_budgets(doc: str) -> None:
    text = _section_text(doc, "Synthetic fab generation")
    assert "| demo | 34K / 15.5K / 1.22K / 9.09K | 70.2K | 2.38M | 14.2 s | 2.50 s | 900 MB | 300 MB | < 60 s: **met** |" in text
    # 1,500 s is over the 20-minute budget even though 2,246 MB is under 4 GB
    assert "| large |" in text and "< 20 min, < 4 GB: **not met** |" in text


def test_lineage_tables_ratios_and_target(doc: str) -> None:
    text = _section_text(doc, "Lineage")
    assert "### DuckDB large" in text and "### DuckDB demo" in text
    # fixture runs without the repeat figures (older JSON) show a dash in that column
    assert "| 10,000 | 1.09 s | — | 3 | 135.5 s | 17,675 | 124× | 28,121 |" in text
    assert "| 10 | 0.185 s | — | 2 | 0.392 s | 15 | 2.1× | 26 |" in text
    assert "**not met** on DuckDB large (1.09 s" in text
    assert "**met** on DuckDB demo (0.459 s, 9,876 nodes; 108× faster" in text
    assert "| 10,000 | 0.459 s | 0.410 s – 0.730 s (5 runs) | 3 | 49.7 s |" in text


def test_events_table(doc: str) -> None:
    text = _section_text(doc, "Events")
    assert "| rejects | 100,000 | 167,636 | 685 MB | 349 MB | 2.0× | 1,455 s | 22.0 s | 66× |" in text
    assert "uses less memory" in text and "100 OR-ed IN lists" in text


def test_trace_scaled_baseline_and_targets(doc: str) -> None:
    text = _section_text(doc, "Trace jobs")
    assert "ran on 20,000 of the lots" in text and "*scaled*" in text
    # rows 2,222,820 / 444,564 = 5.0: first row 105.4 s × 5 = 527 s, growth 1,254.8 MB × 5 = 6,274 MB
    assert "| 114,000 | 527.0 s | 527.0 s | 6,624 MB (+6,274 MB) | 1× | 1× |" in text
    assert "| trace job: web process streaming NDJSON | 114,000 | 1.20 s | 114.9 s | +88 MB | 439× | 71× (growth) |" in text
    assert "first row ≤ 3 s —\n**met**" in text
    assert "web growth ≤ 150 MB — **met**" in text
    assert "worker ≤ 1 GB — **not met**" in text
    assert "`DUCKDB_MEMORY_LIMIT=1GiB`" in text


def test_reports_steps_views_and_p95_verdict(doc: str) -> None:
    text = _section_text(doc, "Reject history report")
    assert "| cold batched query (12 chunks) | 83.7 s | 0.8× |" in text
    assert "| one monolithic statement (baseline) | 62.8 s | 1× |" in text
    assert "| repeat POST on a closed range (dataset reused) | 155 ms | 405× |" in text
    assert "| view 0 | 2,500 ms | 4.2 ms | 8.5 ms | 9.5 ms | 7,388× |" in text
    assert "costs 1.3× on DuckDB" in text
    assert "is **not met**: 2 of 3 views" in text  # view 2 has a p95 of 141 ms
    assert "1,855,212 rows in 12 chunks, spilled to Parquet" in text


def test_querytool_table(doc: str) -> None:
    text = _section_text(doc, "Query tool")
    assert "| split/merge fast (183 days, ≤ 500 rows) | 0.090 s | 2 rows |" in text
    assert "| equipment period lots, 50 machines, 365 d | 6.51 s | 97378 rows in 12 chunks, spilled=False |" in text
    assert "costs 3.0× the bounded one" in text


def test_msd_runs_side_by_side_and_planted_verdict(doc: str) -> None:
    text = _section_text(doc, "Mid-section defect analysis")
    assert "424,901 detected lots" in text and "(190,123 defective)" in text
    assert "| genealogy | 448.5 s, +5,144 MB | 897.0 s, +2,572 MB |" in text
    assert "| end to end | 548.0 s, peak +6,037 MB | 1,096 s, peak +3,018 MB |" in text
    assert "peak growth goes 6,037 → 3,018 MB (2.0× less)\nand time 548.0 s → 1,096 s (2.0× the time)" in text
    assert "| stage | whole cohort at once, batch 10,000,000 | shipped, seeds in batches, batch 5,000 |" in text
    assert "`207022-14-002` (lift 2.13, p 0.0e+00) —\n  a planted excursion" in text
    assert "`NOT-PLANTED-7`" in text and "NOT one of the planted excursions (GWBC-0201, 207022-14-002)" in text


def test_period_reports_table(doc: str) -> None:
    text = _section_text(doc, "Hold, equipment and job reports")
    assert ("| hold history | 28.6 s | 0.630 s | 9.80 s | 0.3× | 16× | 187,688 rows, in Redis | summary 370 ms | 53K rows/s |"
            in text)
    assert "| equipment history | 164.8 s | 3.10 s | 81.8 s | 0.5× | 26× | 1,389,190 rows, spilled to Parquet |" in text
    assert "equipment jobs, 50 busiest machines" in text
    assert "Batched cold is 2.9× (hold), 2.0× (equipment)" in text


def test_failed_and_missing_sections_are_said() -> None:
    data = fixture()
    run = data["sections"]["events"]["runs"][0]
    run.update(result=None, error="exit code 1: MemoryError")
    del data["sections"]["msd"]
    data["meta"].update(quick=True, only=["events"])
    doc = str(report.render(data))
    assert "**large failed** after 100.0 s: `exit code 1: MemoryError`" in _section_text(doc, "Events")
    assert "_Not measured in this run (`bench/report.py --only msd` measures it)._" in doc
    assert "> **Quick run**" in doc
    assert "kept from an earlier run" in doc


def test_plan_documents_the_arguments() -> None:
    full = {s: [r.command() for r in report.plan(s, False, None)] for s in report.SECTIONS}
    assert full["lineage"][0] == ".venv/bin/python bench/lineage.py --url duckdb:///var/bench/large.duckdb"
    assert full["events"] == [".venv/bin/python bench/events_memory.py --url duckdb:///var/bench/large.duckdb "
                              "--ids 100000 --domain rejects"]
    assert "--ids 114000 --baseline-ids 20000" in full["trace"][0]
    assert full["msd"][0].startswith("MSD_SEED_BATCH_SIZE=10000000 .venv/bin/python bench/msd.py")
    assert full["querytool"][0].startswith("MESDASH_SPOOL_DIR=/tmp/qt-bench ")
    quick = {s: [r.command() for r in report.plan(s, True, None)] for s in report.SECTIONS}
    assert all("large.duckdb" not in c for cs in quick.values() for c in cs)
    assert "--sizes 10,100,1000" in quick["lineage"][0]


def test_execute_collects_json_or_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "ok.py").write_text(
        "import json, sys\nprint('table')\njson.dump({'rows': 42}, open(sys.argv[sys.argv.index('--json') + 1], 'w'))\n")
    (bench / "boom.py").write_text("raise SystemExit('out of memory')\n")
    monkeypatch.setattr(report, "BENCH", bench)
    ok = report.execute("events", report.Run("demo", "ok.py", ["--ids", "5"], {"X": "1"}), tmp_path)
    assert ok["result"] == {"rows": 42} and ok["error"] is None
    assert ok["command"] == "X=1 .venv/bin/python bench/ok.py --ids 5"
    assert (tmp_path / "events-demo.log").read_text() == "table\n"
    failed = report.execute("msd", report.Run("whole cohort", "boom.py", []), tmp_path)
    assert failed["result"] is None
    assert failed["error"].startswith("exit code 1: out of memory (log ")
