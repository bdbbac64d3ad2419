"""gunicorn settings and hooks (``-c python:mesdash.admin.gunicorn_conf``).

Under gunicorn, metrics use prometheus-client's multiprocess mode: every worker writes its
samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (default ``{run}/prometheus``), which
gunicorn passes to the workers (``raw_env``). The directory is emptied when the master
starts, and a dead worker's live gauges are dropped (``mark_process_dead``) so /metrics sums
the running workers (counters and histograms of dead workers are kept).

The worker class (``admin/gunicorn_worker.py``) and the keep-alive (``WEB_KEEPALIVE_SECONDS``)
are set here, so that every gunicorn started with this file gets them: do not pass ``-k`` or
``--keep-alive`` on the command line, which would override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesdash.settings import get_settings, reset_settings

_settings = get_settings()
PROMETHEUS_DIR: Path = _settings.prometheus_multiproc_dir or _settings.run_path / "prometheus"
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_DIR}"]
# uvicorn's worker with a drain before its shutdown: a reload answers every accepted connection
worker_class = "mesdash.admin.gunicorn_worker.MesdashUvicornWorker"
keepalive = _settings.web_keepalive_seconds  # WEB_KEEPALIVE_SECONDS (gunicorn's default: 2 s)
reset_settings()  # forked workers must read their settings after gunicorn applied raw_env


def on_starting(server: Any) -> None:
    PROMETHEUS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in PROMETHEUS_DIR.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(PROMETHEUS_DIR))
