"""``mesdash events LOT… --domain history``: a lot's events as a table in the terminal."""

from __future__ import annotations

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
