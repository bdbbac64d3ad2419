"""``mesdash watchdog``."""

from __future__ import annotations

import logging
from typing import Annotated

import orjson
import typer

from mesdash.core.redact import install_redaction
from mesdash.settings import get_settings


def watchdog(
    once: Annotated[
        bool, typer.Option(help="run one pass and exit (print what it did as JSON lines)")
    ] = False,
) -> None:
    """Execute restart requests and automatic recovery (memory pressure, stuck workers) under
    the restart policy: SIGHUP to the gunicorn master in MESDASH_RUN_DIR."""
    from mesdash.admin.watchdog import Watchdog

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_redaction()
    dog = Watchdog(get_settings())
    if once:
        for entry in dog.run_once():
            typer.echo(orjson.dumps(entry).decode())
        return
    dog.run_forever()
