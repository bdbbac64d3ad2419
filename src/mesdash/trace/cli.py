"""``mesdash events LOT… --domain history``: a lot's events as a table in the terminal;
``mesdash trace LOT… --domains history,rejects --out DIR``: a trace job written to files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mesdash.core.db import get_warehouse
from mesdash.core.resilience.problem import jsonable_bytes
from mesdash.trace.events import DOMAINS, EventFetcher
from mesdash.trace.resolve import resolve_lots

DEFAULT_COLUMNS = 8


def events(
    lot_names: Annotated[list[str], typer.Argument(help="lot names (CONTAINERNAME); wildcards * allowed")],
    domain: Annotated[str, typer.Option(help=f"one of: {', '.join(DOMAINS)}")] = "history",
    columns: Annotated[str | None, typer.Option(help="comma-separated columns to show")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Print the events of lots in one domain."""
    console = Console()
    if domain not in DOMAINS:
        raise typer.BadParameter(f"domain must be one of {', '.join(DOMAINS)}")
    warehouse = get_warehouse()
    resolved = resolve_lots(warehouse, "lot_id", lot_names)
    for missing in resolved["not_found"]:
        console.print(f"[yellow]not found:[/] {missing}")
    names = {d["container_id"]: d["lot_id"] for d in resolved["data"]}
    result = EventFetcher(warehouse).fetch_events(list(names), domain)
    rows = [row for cid in names for row in result["records_by_cid"].get(cid, [])]
    if json_out:
        typer.echo(jsonable_bytes({"rows": rows, "quality": result["quality"]}).decode())
        return
    shown = columns.split(",") if columns else [c for c in (rows[0] if rows else {}) if c != "CONTAINERID"][
        :DEFAULT_COLUMNS
    ]
    table = Table("LOT", *shown, title=f"{domain}: {len(rows)} rows, {len(names)} lots")
    for row in rows:
        cells = ("" if row.get(c) is None else str(row.get(c)) for c in shown)
        table.add_row(names[row["CONTAINERID"]], *cells)
    console.print(table)


def trace(
    lot_names: Annotated[list[str], typer.Argument(help="lot names (CONTAINERNAME); wildcards * allowed")],
    domains: Annotated[str, typer.Option(help=f"comma-separated, of: {', '.join(DOMAINS)}")] = "history",
    out: Annotated[Path, typer.Option(help="directory for one file per domain")] = Path("trace-out"),
    lineage: Annotated[str, typer.Option(help="none | backward | forward | both")] = "none",
    fmt: Annotated[str, typer.Option("--format", help="parquet | csv")] = "parquet",
) -> None:
    """Trace lots as a job (RQ workers with Redis, this process without) with a progress
    bar, then write each domain's rows to DIR/{domain}.{parquet|csv}."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mesdash.core.jobs import FINISHED, job_status, result_dir
    from mesdash.trace.export import export_domain
    from mesdash.trace.jobs import submit_trace
    from mesdash.trace.parts import Manifest
    from mesdash.trace.service import canonical_domains

    console = Console()
    wanted = [d.strip() for d in domains.split(",") if d.strip()]
    if not wanted or set(wanted) - set(DOMAINS):
        raise typer.BadParameter(f"domains must be among {', '.join(DOMAINS)}")
    if lineage not in ("none", "backward", "forward", "both") or fmt not in ("parquet", "csv"):
        raise typer.BadParameter("lineage: none|backward|forward|both; format: parquet|csv")
    resolved = resolve_lots(get_warehouse(), "lot_id", lot_names)
    for missing in resolved["not_found"]:
        console.print(f"[yellow]not found:[/] {missing}")
    ids = [d["container_id"] for d in resolved["data"]]
    if not ids:
        raise typer.Exit(1)
    job = submit_trace(ids, canonical_domains(wanted), lineage)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"trace {job.job_id}", total=100)
        while (status := job_status(job.job_id))["status"] in ("queued", "started"):
            bar.update(task, completed=status["progress"]["pct"],
                       description=f"{status['status']} {status['progress']['stage']}")
            time.sleep(0.5)
        bar.update(task, completed=status["progress"]["pct"], description=status["status"])
    if status["status"] != FINISHED:
        console.print(f"[red]trace {status['status']}:[/] {status.get('error') or ''}")
        raise typer.Exit(1)
    manifest = Manifest.load(result_dir("trace", job.job_id))
    assert manifest is not None
    out.mkdir(parents=True, exist_ok=True)
    for domain in manifest.domains:
        target = out / f"{domain}.{fmt}"
        rows = export_domain(manifest, domain, target, fmt)
        console.print(f"{domain}: {rows:,} rows" + (f" → {target}" if rows else ""))
