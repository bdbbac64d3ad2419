"""The ``mesdash`` command."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mesdash.settings import get_settings

app = typer.Typer(
    help="mesdash: lot lineage, trace and history reports over the MES warehouse.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _open_writable() -> object:
    """The warehouse for init-db / generate; refuses while a server holds an embedded file."""
    from mesdash.core.db.warehouse import Warehouse
    from mesdash.core.resilience.errors import DBUnavailable

    try:
        return Warehouse(read_only=False)
    except DBUnavailable as exc:
        console.print(
            f"[red]cannot open the warehouse for writing:[/] {exc.detail}. "
            "Is `mesdash serve` or a worker still running on it?"
        )
        raise typer.Exit(2) from None


@app.command("init-db")
def init_db(drop: Annotated[bool, typer.Option(help="drop existing tables first")] = False) -> None:
    """Create schema dwh, its tables and join-key indexes (DuckDB or PostgreSQL)."""
    from mesdash.core.db.schema import init_db as create
    from mesdash.core.db.warehouse import Warehouse

    wh = _open_writable()
    assert isinstance(wh, Warehouse)
    with wh.write_connection() as conn:
        create(conn, drop=drop)
    console.print(f"[green]warehouse ready[/] ({wh.dialect})")
    wh.close()


@app.command()
def generate(
    scale: Annotated[str, typer.Option(help="tiny | demo | large")] = "demo",
    seed: Annotated[int, typer.Option(help="random seed (same seed → same factory)")] = 1,
    end_date: Annotated[
        str | None, typer.Option(help="last factory day, YYYY-MM-DD (default: the last complete one)")
    ] = None,
) -> None:
    """Fill the warehouse at MESDASH_DATABASE_URL with a synthetic, realistic fab."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from mesdash.core.db.warehouse import Warehouse
    from mesdash.synth import generate as run

    if scale not in {"tiny", "demo", "large"}:
        raise typer.BadParameter("scale must be tiny, demo or large")
    end = date.fromisoformat(end_date) if end_date else None
    wh = _open_writable()
    assert isinstance(wh, Warehouse)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        manifest = run(wh, scale=scale, seed=seed, end_date=end, progress=progress)
    wh.close()
    rows = manifest.get("row_counts", {})
    console.print(f"[green]generated {scale}[/]: {sum(rows.values()):,} rows in {len(rows)} tables")


def _embedded_path() -> Path | None:
    url = get_settings().database_url
    if not url.startswith("duckdb:"):
        return None
    path = url.split("://", 1)[1]
    return Path(path[1:] if path.startswith("/") else path)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="web workers (production: gunicorn)")] = 0,
) -> None:
    """Run the web service: uvicorn in development, gunicorn + uvicorn workers in production."""
    settings = get_settings()
    console.print(f"mesdash on [bold]http://{host}:{port}/[/] ({settings.env}, {settings.dialect})")
    if settings.env == "production":
        settings.run_path.mkdir(parents=True, exist_ok=True)
        count = workers or max(2, settings.web_workers)
        os.execvp(
            sys.executable,
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mesdash.app:create_app()",
                "-w",
                str(count),
                "-b",
                f"{host}:{port}",
                "--graceful-timeout",
                "30",
                "--pid",
                str(settings.run_path / "gunicorn.pid"),
                "-c",  # also the worker class (uvicorn's, draining on reload) and the keep-alive
                "python:mesdash.admin.gunicorn_conf",
            ],
        )
    import uvicorn

    uvicorn.run(
        "mesdash.app:create_app", factory=True, host=host, port=port, workers=workers or 1, log_level="info"
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Generate the demo warehouse if missing, then serve it and print the URL."""
    path = _embedded_path()
    if path is not None and not path.exists():
        console.print(f"generating the demo warehouse at {path} (about a minute)…")
        generate(scale="demo", seed=1, end_date=None)
    serve(host=host, port=port, workers=0)


def _register_slices() -> None:
    from mesdash.lineage.cli import lineage
    from mesdash.trace.cli import events, trace

    app.command("lineage", help="Genealogy of lots by name: backward (default) or --forward.")(lineage)
    app.command("events", help="Events of lots in one domain, as a table.")(events)
    app.command("trace", help="Trace lots as a job and write each event domain to a file.")(trace)

    from mesdash.admin.cli import watchdog

    app.command("watchdog")(watchdog)

    from mesdash.core.jobs.worker import worker

    app.command("worker")(worker)


_register_slices()

if __name__ == "__main__":
    app()
