"""The cross-process heavy-query cap (``HEAVY_QUERY_MAX_CONCURRENT``) on real Redis: slots
across threads and processes, leases that free a dead holder's slot, renewal that keeps a
live one's, and failing open without Redis or when Redis is down."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from faults import free_port, private_redis, wait_until
from mesdash.core.redis_client import reset_redis
from mesdash.core.resilience.errors import DBBusy
from mesdash.core.resilience.heavy import HeavyQueryCap
from mesdash.settings import get_settings, reset_settings

LEASE = 0.6
Configure = Callable[..., HeavyQueryCap]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    def apply(**env: str) -> HeavyQueryCap:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_settings()
        reset_redis()
        return HeavyQueryCap(get_settings())

    yield apply
    reset_redis()
    reset_settings()


def _env(redis_url: str, cap: int) -> dict[str, str]:
    return {
        "MESDASH_REDIS_URL": redis_url,
        "MESDASH_CACHE_NAMESPACE": f"mesdash-heavy-test-{uuid.uuid4().hex[:8]}",
        "HEAVY_QUERY_MAX_CONCURRENT": str(cap),
        "HEAVY_QUERY_LEASE_SECONDS": str(LEASE),
    }


def test_no_cap_or_no_redis_runs_unlimited(configure: Configure, redis_url: str) -> None:
    cap = configure(MESDASH_REDIS_URL=redis_url, HEAVY_QUERY_MAX_CONCURRENT="0")
    with cap.slot() as held, cap.slot() as nested:
        assert held is False and nested is False
    assert cap.snapshot() == {"max_concurrent": 0, "enabled": False, "holders": None}
    os.environ.pop("MESDASH_REDIS_URL", None)
    cap = configure(HEAVY_QUERY_MAX_CONCURRENT="1")
    with cap.slot() as first:
        assert first is False


def test_slots_are_shared_and_waiting_is_bounded(configure: Configure, redis_url: str) -> None:
    cap = configure(**_env(redis_url, 2))
    release = threading.Event()
    holding = threading.Barrier(3)

    def hold() -> None:
        with cap.slot() as held:
            assert held is True
            holding.wait(5)
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
    holding.wait(5)
    try:
        assert cap.snapshot()["holders"] == 2
        started = time.monotonic()
        with pytest.raises(DBBusy) as info, cap.slot(wait_seconds=0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 1.5
        assert info.value.code == "DB_BUSY" and info.value.retry_after == 5
    finally:
        release.set()
        for t in holders:
            t.join(10)
    assert cap.snapshot()["holders"] == 0
    with cap.slot(wait_seconds=0.3) as held:
        assert held is True
        with cap.slot(wait_seconds=0.1) as nested:  # the same thread reuses its slot
            assert nested is True
        assert cap.snapshot()["holders"] == 1


_HOLDER = """
import sys, time
from mesdash.core.resilience.heavy import HeavyQueryCap
with HeavyQueryCap().slot() as held:
    print("held" if held else "open", flush=True)
    time.sleep(600)
"""


def test_a_dead_holder_frees_its_slot_a_live_one_keeps_it(configure: Configure, redis_url: str) -> None:
    env = _env(redis_url, 1)
    cap = configure(**env)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        env={**os.environ, **env, "MESDASH_ENV": "testing"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        time.sleep(LEASE * 2.5)  # renewed by the live holder
        with pytest.raises(DBBusy), cap.slot(wait_seconds=0.2):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        with cap.slot(wait_seconds=LEASE * 3) as held:
            assert held is True
        assert time.monotonic() - killed <= LEASE * 3
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_redis_down_fails_open(configure: Configure, caplog: pytest.LogCaptureFixture) -> None:
    cap = configure(**_env(f"redis://127.0.0.1:{free_port()}/0", 1))
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    with cap.slot() as held, cap.slot() as again:
        assert held is False and again is False
    assert time.monotonic() - started < 3
    assert "heavy-query cap unavailable (ConnectionError)" in caplog.text
    assert cap.snapshot()["error"] == "ConnectionError"


def test_redis_stopping_while_a_slot_is_held(configure: Configure) -> None:
    with private_redis() as server:
        cap = configure(**_env(server.url, 1))
        with cap.slot() as held:
            assert held is True
            server.stop()
            time.sleep(LEASE)  # renewals fail quietly
        # release failed quietly too; with Redis gone, new slots fail open
        with cap.slot(wait_seconds=0.2) as after:
            assert after is False
        server.start()
        wait_until(server.answering, 5)
        with cap.slot(wait_seconds=0.2) as again:  # a fresh server: the old holder is gone
            assert again is True
