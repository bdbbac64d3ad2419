"""The process's Redis pool closes sockets idle for REDIS_MAX_IDLE_SECONDS: a web worker no
longer keeps one more socket after every concurrency peak (the 30-minute soak's web worker
ended with 3 Redis sockets more than after its warm-up)."""

from __future__ import annotations

import psutil
import pytest
import redis

from mesdash.core.redis_client import IdleClosingPool, get_redis
from mesdash.settings import reset_settings


def test_connections_idle_past_max_idle_are_closed_and_reconnect_when_used(redis_url: str) -> None:
    now = [0.0]
    pool = IdleClosingPool.from_url(redis_url, max_idle=60, clock=lambda: now[0])
    client = redis.Redis(connection_pool=pool)
    try:
        peak = [pool.get_connection() for _ in range(6)]  # six callers at once: six sockets
        fds_at_peak = psutil.Process().num_fds()
        for connection in peak[:4]:
            pool.release(connection)
        now[0] = 30
        for connection in peak[4:]:
            pool.release(connection)
        now[0] = 70  # four idle for 70 s, two for 40 s
        assert pool.close_idle() == 4
        assert psutil.Process().num_fds() == fds_at_peak - 4
        assert client.ping() is True  # on the most recently used connection, still open
        assert psutil.Process().num_fds() == fds_at_peak - 4
        now[0] = 200
        assert pool.close_idle() == 2
        assert psutil.Process().num_fds() == fds_at_peak - 6
        assert client.set("mesdash-test-pool", b"1", ex=5) is True  # a closed one reconnects
        assert client.get("mesdash-test-pool") == b"1"
        assert psutil.Process().num_fds() == fds_at_peak - 5
        assert pool.close_idle() == 0  # just used
    finally:
        pool.disconnect()


def test_the_process_client_uses_the_setting(monkeypatch: pytest.MonkeyPatch, redis_namespace: str) -> None:
    monkeypatch.setenv("REDIS_MAX_IDLE_SECONDS", "42")
    reset_settings()
    from mesdash.core.redis_client import reset_redis

    reset_redis()
    client = get_redis()
    assert client is not None and client.ping() is True
    assert isinstance(client.connection_pool, IdleClosingPool) and client.connection_pool.max_idle == 42.0


def test_a_forked_process_closes_its_own_idle_connections(
    monkeypatch: pytest.MonkeyPatch, redis_namespace: str
) -> None:
    """A gunicorn worker or an RQ work horse forked after the parent made its client: the
    parent's closing thread did not survive the fork, so the child starts one."""
    import os
    import threading

    assert get_redis() is not None
    assert "redis-idle-close" in [t.name for t in threading.enumerate()]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one thread only (the fork's), then its own closer
        try:
            get_redis()
            names = [t.name for t in threading.enumerate()]
            os.write(write, str(names.count("redis-idle-close")).encode())
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"1"
    os.waitpid(pid, 0)
