"""Regenerate docs/benchmarks.md: run every bench script, collect its JSON, render the template.

    .venv/bin/python bench/report.py [--quick] [--only lineage,msd] [--out docs/benchmarks.md]

Each bench runs as its own subprocess (``.venv/bin/python bench/X.py ... --json PATH``) with the
arguments the report documents; its printed output goes to a log next to its JSON under
``--work`` (default ``var/bench/report``). The figures of all sections, the machine (cores,
RAM, OS, CPU, Python, DuckDB, PostgreSQL), the date and the command go into one JSON file
(``--json-out``), and ``bench/benchmarks.md.j2`` renders it: every table, ratio and verdict
comes from that JSON.

- The full run measures the ``large`` warehouse (``var/bench/large.duckdb``; generated first
  with ``mesdash generate --scale large --seed 7`` when missing) and, for lineage, the
  ``demo`` one as well; ``--quick`` runs every bench on ``demo`` (``var/bench/demo.duckdb``,
  ``--seed 1``) with small sizes: a smoke run in minutes.
- ``--only`` runs some sections; ``--merge`` keeps the other sections' figures from the
  previous ``--json-out`` (each section shows its own date); ``--from-json`` only renders.
- A bench that fails is reported as failed in its section (with its log's last lines); the
  others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TEMPLATE = "benchmarks.md.j2"
SECTIONS = ("generate", "lineage", "events", "trace", "reports", "querytool", "msd", "period_reports")
WAREHOUSES = {  # scale: (file, seed) — the seeds the report's figures were taken on
    "large": (Path("var/bench/large.duckdb"), 7),
    "demo": (Path("var/bench/demo.duckdb"), 1),
}
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MSD_WHOLE_COHORT = 10_000_000  # MSD_SEED_BATCH_SIZE above any cohort: every seed in one batch
TRACE_BASELINE_IDS = 20_000  # the inline baseline on 114,000 lots takes ~9 min and 6.6 GB


@dataclass
class Run:
    """One bench invocation: ``script`` with ``args`` (and ``env``) under a label."""

    label: str
    script: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def command(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cmd = shlex.join([".venv/bin/python", f"bench/{self.script}", *self.args])
        return f"{env} {cmd}" if env else cmd


# --- the runs of each section ------------------------------------------------------------


def _url(path: Path) -> str:
    return f"duckdb:///{path}"


def _manifest(path: Path) -> dict[str, Any]:
    manifest = Path(f"{ROOT / path}.manifest.json")
    return dict(json.loads(manifest.read_text(encoding="utf-8"))) if manifest.exists() else {}


def _msd_window(path: Path, quick: bool) -> tuple[str, str]:
    """Full: five months, 235 to 83 days before the data's last day (2026-04-01 .. 2026-08-31
    for the documented warehouse, ending 2026-11-22). Quick: the planted material lot's window
    and a week either side."""
    manifest = _manifest(path)
    end = date.fromisoformat(manifest.get("end_date") or (date.today() - timedelta(days=1)).isoformat())
    if quick:
        for exc in manifest.get("excursions", []):
            if exc.get("kind") == "material" and exc.get("window"):
                first = date.fromisoformat(exc["window"]["start"][:10]) - timedelta(days=7)
                last = date.fromisoformat(exc["window"]["end"][:10]) + timedelta(days=7)
                return first.isoformat(), min(last, end).isoformat()
        return (end - timedelta(days=29)).isoformat(), end.isoformat()
    return (end - timedelta(days=235)).isoformat(), (end - timedelta(days=83)).isoformat()


def plan(section: str, quick: bool, pg_url: str | None) -> list[Run]:
    """The runs of ``section``: the arguments docs/benchmarks.md documents (full), or the
    ``demo`` warehouse with small sizes (quick)."""
    wh, _ = WAREHOUSES["demo" if quick else "large"]
    url = _url(wh)
    end = _manifest(wh).get("end_date") or (date.today() - timedelta(days=1)).isoformat()
    name = "demo" if quick else "large"
    if section == "generate":
        return [Run("demo" if quick else "demo, large", "generate.py",
                    ["--scales", "demo" if quick else "demo,large"])]
    if section == "lineage":
        if quick:
            return [Run("DuckDB demo", "lineage.py", ["--url", url, "--sizes", "10,100,1000"])]
        runs = [Run("DuckDB large", "lineage.py", ["--url", url]),
                Run("DuckDB demo", "lineage.py", ["--url", _url(WAREHOUSES["demo"][0])])]
        if pg_url:
            runs.append(Run("PostgreSQL", "lineage.py", ["--url", pg_url]))
        return runs
    if section == "events":
        ids = "2000" if quick else "100000"
        return [Run(name, "events_memory.py", ["--url", url, "--ids", ids, "--domain", "rejects"])]
    if section == "trace":
        if quick:
            return [Run(name, "trace_memory.py", ["--url", url, "--ids", "2000"])]
        return [Run(name, "trace_memory.py",
                    ["--url", url, "--ids", "114000", "--baseline-ids", str(TRACE_BASELINE_IDS)])]
    if section == "reports":
        small = ["--days", "60", "--repeat", "5"] if quick else []
        return [Run(name, "reports.py", ["--url", url, "--end", end, *small])]
    if section == "querytool":
        return [Run(name, "querytool.py", ["--url", url], {"MESDASH_SPOOL_DIR": "/tmp/qt-bench"})]
    if section == "msd":
        start, stop = _msd_window(wh, quick)
        args = ["--url", url, "--start", start, "--end", stop]
        return [Run("whole cohort at once", "msd.py", args, {"MSD_SEED_BATCH_SIZE": str(MSD_WHOLE_COHORT)}),
                Run("shipped, seeds in batches", "msd.py", args)]
    if section == "period_reports":
        small = ["--days", "60", "--repeat", "3"] if quick else []
        return [Run(name, "period_reports.py", ["--url", url, "--end", end, *small])]
    raise ValueError(f"unknown section {section!r}")


# --- the machine --------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def _pg_version(url: str) -> str:
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"{str(row[0]).split()[0]} (server)" if row else "unknown"
    except Exception:
        try:
            out = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=True).stdout
            return f"{out.split()[-1]} (client; server not reachable)"
        except (OSError, subprocess.CalledProcessError):
            return "not found"


def machine(pg_url: str) -> dict[str, Any]:
    """What the figures were measured on, read now."""
    import duckdb
    import psutil

    os_release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', _read("/etc/os-release"), re.M))
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{os_release.get('PRETTY_NAME', platform.system())}, Linux {platform.release()}",
        "cpu": cpu.group(1).strip() if cpu else (platform.processor() or "unknown"),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "postgresql": _pg_version(pg_url),
        "hostname": platform.node(),
        "commit": commit,
    }


# --- running ------------------------------------------------------------------------------


def ensure_warehouse(scale: str) -> None:
    """Generate ``var/bench/{scale}.duckdb`` when it is missing (large: a few minutes)."""
    path, seed = WAREHOUSES[scale]
    if (ROOT / path).exists():
        return
    (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
    print(f"generating the {scale} warehouse into {path} (seed {seed}) …", flush=True)
    subprocess.run([str(Path(sys.executable).parent / "mesdash"), "generate", "--scale", scale, "--seed", str(seed)],
                   cwd=ROOT, env={**os.environ, "MESDASH_DATABASE_URL": _url(path)}, check=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def execute(section: str, run: Run, work: Path) -> dict[str, Any]:
    """Run one bench; its JSON, or the error with the log's tail."""
    stem = work / f"{section}-{_slug(run.label)}"
    out_json, log = stem.with_suffix(".json"), stem.with_suffix(".log")
    out_json.unlink(missing_ok=True)
    argv = [sys.executable, str(BENCH / run.script), *run.args, "--json", str(out_json)]
    print(f"[{section}] {run.label}: {run.command()}", flush=True)
    start = time.monotonic()
    with log.open("wb") as sink:
        done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **run.env}, stdout=sink,
                              stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - start
    entry: dict[str, Any] = {"label": run.label, "command": run.command(), "seconds": round(seconds, 1),
                             "log": str(log), "result": None, "error": None}
    kept = re.search(r"\(spool (\S+); remove it when done\)", log.read_text(encoding="utf-8", errors="replace"))
    if kept and Path(kept.group(1)).name.startswith("mesdash-bench-"):  # trace_memory.py leaves its spool
        shutil.rmtree(kept.group(1), ignore_errors=True)
    if done.returncode == 0 and out_json.exists():
        entry["result"] = json.loads(out_json.read_text(encoding="utf-8"))
    else:
        lines = [x.strip() for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
        entry["error"] = f"exit code {done.returncode}: {lines[-1] if lines else 'no output'} (log {log})"
    print(f"[{section}] {run.label}: {'ok' if entry['error'] is None else 'FAILED'} in {seconds:.0f} s "
          f"(log {log})", flush=True)
    return entry


def run_section(section: str, quick: bool, pg_url: str | None, work: Path) -> dict[str, Any]:
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    runs = [execute(section, run, work) for run in plan(section, quick, pg_url)]
    return {"started": started.strftime("%Y-%m-%d %H:%M UTC"), "quick": quick,
            "seconds": round(sum(r["seconds"] for r in runs), 1),
            "load_before": [round(x, 1) for x in load_before],
            "load_after": [round(x, 1) for x in os.getloadavg()], "runs": runs}


# --- rendering ----------------------------------------------------------------------------


def _num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _secs(value: Any) -> str:
    """Seconds with the precision their size deserves."""
    if value is None:
        return "–"
    v = float(value)
    if v < 1:
        return f"{v:.3f} s"
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s" if v < 1000 else f"{v:,.0f} s"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    v = float(value)
    return f"{v:.1f} ms" if v < 10 else f"{v:,.0f} ms"


def _ratio(value: Any) -> str:
    if value is None:
        return "–"
    v = float(value)
    return f"{v:.1f}×" if v < 10 else f"{v:,.0f}×"


def _compact(value: Any) -> str:
    """2,381,245 → 2.38M; 50,312 → 50.3K."""
    v = float(value)
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if v >= size:
            return f"{v / size:.3g}{unit}"
    return f"{v:.0f}"


def render(data: dict[str, Any], template_dir: Path = BENCH) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(num=_num, secs=_secs, ms=_ms, ratio=_ratio, compact=_compact)
    env.tests["startswith"] = lambda value, prefix: str(value).startswith(prefix)
    sections = data.get("sections", {})

    def result(section: str, label: str | None = None) -> dict[str, Any] | None:
        """The JSON of a section's (first, or labelled) successful run."""
        for run in sections.get(section, {}).get("runs", []):
            if run.get("result") is not None and (label is None or run["label"] == label):
                return dict(run["result"])
        return None

    text = env.get_template(TEMPLATE).render(meta=data["meta"], s=sections, result=result)
    return re.sub(r"\n{3,}", "\n\n", text)  # the template's optional blocks leave blank runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every bench on the demo warehouse, small sizes")
    parser.add_argument("--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--out", default=None,
                        help="the markdown to write (default: docs/benchmarks.md; with --quick "
                             "var/bench/report/benchmarks.quick.md)")
    parser.add_argument("--json-out", default=None,
                        help="all figures as JSON (default: var/bench/report/<out's name>.json)")
    parser.add_argument("--work", default="var/bench/report", help="per-bench JSON and logs")
    parser.add_argument("--merge", action="store_true",
                        help="keep the sections not run now from the previous --json-out")
    parser.add_argument("--from-json", metavar="PATH", help="render this JSON only; run nothing")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL to name in the header (its version)")
    parser.add_argument("--pg-warehouse", default=None,
                        help="also run the lineage bench on this PostgreSQL warehouse URL (full run only)")
    args = parser.parse_args()

    out = ROOT / (args.out or ("var/bench/report/benchmarks.quick.md" if args.quick else "docs/benchmarks.md"))
    json_out = ROOT / (args.json_out or Path(args.work) / f"{out.stem}.json")
    if args.from_json:
        out.write_text(render(json.loads((ROOT / args.from_json).read_text(encoding="utf-8"))), encoding="utf-8")
        print(f"rendered {args.from_json} into {out}")
        return 0

    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    work = ROOT / args.work
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    start = time.monotonic()
    data: dict[str, Any] = {"sections": {}}
    if args.merge and json_out.exists():
        data["sections"] = json.loads(json_out.read_text(encoding="utf-8")).get("sections", {})
    data["meta"] = {
        "command": shlex.join([".venv/bin/python", "bench/report.py", *sys.argv[1:]]),
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "only": only if args.only else None,
        "machine": machine(args.pg_url),
    }
    needs_large = not args.quick and any(s != "generate" for s in only)
    if needs_large:
        ensure_warehouse("large")
    if args.quick or "lineage" in only:
        ensure_warehouse("demo")
    for manifest_of in ("large", "demo"):
        manifest = _manifest(WAREHOUSES[manifest_of][0])
        if manifest:
            data["meta"][f"{manifest_of}_warehouse"] = {
                "path": str(WAREHOUSES[manifest_of][0]), "seed": manifest.get("seed"),
                "end_date": manifest.get("end_date"), "rows": sum(manifest.get("row_counts", {}).values()),
                "containers": manifest.get("row_counts", {}).get("DW_MES_CONTAINER"),
            }
    for section in [s for s in SECTIONS if s in only]:
        pg = args.pg_warehouse if section == "lineage" and not args.quick else None
        data["sections"][section] = run_section(section, args.quick, pg, work)
        data["meta"]["seconds"] = round(time.monotonic() - start)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    data["meta"]["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    data["meta"]["seconds"] = round(time.monotonic() - start)
    json_out.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    failed = [f"{name}/{r['label']}" for name, sec in data["sections"].items() for r in sec["runs"] if r["error"]]
    print(f"wrote {out} and {json_out} in {data['meta']['seconds']} s" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
