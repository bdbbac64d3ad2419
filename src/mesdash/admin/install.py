"""Mount health, metrics and admin on the app; start the worker heartbeat under gunicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mesdash.admin import metrics
from mesdash.admin.health import router as health_router
from mesdash.admin.router import router as admin_router
from mesdash.admin.workers import master_pid, remove_heartbeat, write_heartbeat
from mesdash.settings import get_settings


async def heartbeat(run_dir: Path, interval: float) -> None:
    """Touch this worker's heartbeat file from the event loop: if the loop blocks, the file
    goes stale and the watchdog sees a stuck worker."""
    pid, started = os.getpid(), time.time()
    try:
        while True:
            write_heartbeat(run_dir, pid, started, metrics.INFLIGHT)
            await asyncio.sleep(interval)
    finally:
        remove_heartbeat(run_dir, pid)


def _with_heartbeat(app: FastAPI) -> None:
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with original(app_) as state:
            settings = get_settings()
            task = None
            if master_pid(settings.run_path) == os.getppid():  # a gunicorn worker
                task = asyncio.create_task(heartbeat(settings.run_path, settings.worker_heartbeat_seconds))
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan


def install_admin(app: FastAPI) -> None:
    metrics.install_observers()
    app.add_middleware(metrics.RequestMetrics)
    app.include_router(health_router)
    app.include_router(metrics.router)
    app.include_router(admin_router)
    _with_heartbeat(app)
