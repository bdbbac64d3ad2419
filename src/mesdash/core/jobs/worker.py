"""``mesdash worker``: an RQ worker on the job queues, with the job watchdog beside it."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Annotated

import typer

from mesdash.core.jobs.model import QUEUES
from mesdash.settings import get_settings

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 0.5  # then doubling, up to
RETRY_MAX_SECONDS = 5.0


def worker(
    queues: Annotated[
        list[str] | None, typer.Argument(help=f"queues to listen on (default: all of {', '.join(QUEUES)})")
    ] = None,
    burst: Annotated[bool, typer.Option(help="exit once the queues are empty")] = False,
    simple: Annotated[
        bool, typer.Option(help="run jobs in the worker process itself (no fork per job)")
    ] = False,
) -> None:
    """Run jobs (trace, reports, defect analysis, query tool) from Redis; start as many
    workers on as many hosts as reach Redis and the shared spool."""
    import redis
    from rq import SimpleWorker, Worker

    from mesdash.core.batch.spool import QuerySpool
    from mesdash.core.jobs import runner
    from mesdash.core.jobs.runner import rq_queue_name
    from mesdash.core.jobs.watchdog import start_watchdog
    from mesdash.core.redact import install_redaction

    settings = get_settings()
    if not settings.redis_url:
        typer.echo("mesdash worker needs MESDASH_REDIS_URL; without Redis, jobs run inside the web process.")
        raise typer.Exit(2)
    names = queues or list(QUEUES)
    unknown = sorted(set(names) - set(QUEUES))
    if unknown:
        raise typer.BadParameter(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_redaction()
    connection = redis.Redis.from_url(settings.redis_url)
    stop = start_watchdog()
    QuerySpool().start_cleanup_loop(stop)  # expired spilled datasets (one pass at a time across hosts)
    worker_class = SimpleWorker if simple else Worker
    if not simple:
        runner.FORKING_WORKER_PID = os.getpid()  # its horses exit if this process dies
    try:
        # RQ's work loop re-raises when Redis goes away; wait for Redis and start a new
        # worker (a new name: the old registration expires by itself) instead of exiting, so
        # a Redis restart does not depend on a service manager's restart policy
        retry = RETRY_FIRST_SECONDS
        while True:
            try:
                worker_class([rq_queue_name(q) for q in names], connection=connection).work(burst=burst)
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unavailable (%s); the worker restarts when it answers", type(exc).__name__)
            while not _answers(connection):
                time.sleep(retry)
                retry = min(retry * 2, RETRY_MAX_SECONDS)
            retry = RETRY_FIRST_SECONDS
    finally:
        stop.set()


def _answers(connection: redis.Redis) -> bool:
    import redis

    try:
        return bool(connection.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
