"""Query spool: layout, atomic writes, id validation, expiry, mismatch, cleanup, size cap.

Each test runs with the pointer in the shared Redis (unique namespace) and without Redis
(JSON sidecar, file lock).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from filelock import FileLock

from mesdash.core.batch.spool import QuerySpool, SpoolFull, columns_hash
from mesdash.core.redis_client import get_redis, key
from mesdash.settings import get_settings
from test_batch_support import use_backend


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "local"])
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[str]:
    gen = use_backend(monkeypatch, request.param, redis_url, tmp_path / "spool")
    next(gen)
    yield str(request.param)
    next(gen, None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def table(n: int = 10, extra: bool = False) -> pa.Table:
    cols: dict[str, list[object]] = {
        "ID": [f"L{i:04d}" for i in range(n)],
        "QTY": [float(i) for i in range(n)],
    }
    if extra:
        cols["NOTE"] = ["x"] * n
    return pa.table(cols)


def test_round_trip_layout_and_pointer(backend: str, clock: Clock) -> None:
    spool = QuerySpool(clock=clock)
    settings = get_settings()
    assert spool.root == settings.spool_path / "query" / settings.namespace
    entry = spool.write_tables("reject", "q1", [table(5), table(7)], ttl_seconds=60)
    path = spool.root / "reject" / "q1.parquet"
    assert entry.path == str(path) and path.exists() and entry.rows == 12
    assert entry.size == path.stat().st_size and entry.expires_at == clock.now + 60
    assert entry.columns_hash == columns_hash(table().schema)
    assert spool.lookup("reject", "q1") == entry
    got = spool.read("reject", "q1")
    assert got is not None and got.num_rows == 12 and got.column("ID").to_pylist()[5] == "L0000"
    batches = spool.iter_batches("reject", "q1", batch_size=4)
    assert batches is not None and sum(b.num_rows for b in batches) == 12
    if backend == "redis":
        raw = get_redis().hgetall(key("spool", "reject", "q1"))  # type: ignore[union-attr]
        assert raw[b"rows"] == b"12" and raw[b"columns_hash"] == entry.columns_hash.encode()
        assert 0 < get_redis().ttl(key("spool", "reject", "q1")) <= 61  # type: ignore[union-attr]
    else:
        assert (spool.root / "reject" / "q1.meta.json").exists()
    assert [p.name for p in (spool.root / "reject").iterdir() if p.name.endswith(".tmp")] == []


def test_ids_are_validated(backend: str) -> None:
    spool = QuerySpool()
    for bad in ("../x", "a/b", "", ".hidden", "x" * 200, "a b", "..", "q\x00"):
        with pytest.raises(ValueError):
            spool.path_for("reject", bad)
        with pytest.raises(ValueError):
            spool.lookup(bad, "q1")
    with pytest.raises(ValueError):
        spool.write_table("../etc", "q1", table())
    assert spool.path_for("reject", "abc_DEF-123").name == "abc_DEF-123.parquet"


def test_failed_write_leaves_nothing_and_keeps_the_old_file(backend: str) -> None:
    spool = QuerySpool()
    old = spool.write_table("reject", "q2", table(3))

    def broken() -> Iterator[pa.Table]:
        yield table(50)
        raise RuntimeError("warehouse gone mid-write")

    with pytest.raises(RuntimeError):
        spool.write_tables("reject", "q2", broken())
    assert [p.name for p in (spool.root / "reject").iterdir() if p.name.endswith(".tmp")] == []
    assert spool.lookup("reject", "q2") == old
    assert spool.read("reject", "q2").num_rows == 3  # type: ignore[union-attr]


def test_expired_entry_is_dropped(backend: str, clock: Clock) -> None:
    spool = QuerySpool(clock=clock)
    spool.write_table("reject", "q3", table(), ttl_seconds=30)
    clock.now += 29
    assert spool.lookup("reject", "q3") is not None
    clock.now += 2
    assert spool.lookup("reject", "q3") is None
    assert not spool.path_for("reject", "q3").exists()
    assert spool.read("reject", "q3") is None


def test_missing_or_mismatched_file_is_dropped(backend: str) -> None:
    spool = QuerySpool()
    spool.write_table("reject", "q4", table())
    spool.path_for("reject", "q4").unlink()
    assert spool.lookup("reject", "q4") is None
    if backend == "redis":
        assert not get_redis().exists(key("spool", "reject", "q4"))  # type: ignore[union-attr]
    # same size is unlikely; a different schema written behind the pointer's back is caught
    spool.write_table("reject", "q5", table())
    pq.write_table(table(extra=True), spool.path_for("reject", "q5"))
    assert spool.lookup("reject", "q5") is None and not spool.path_for("reject", "q5").exists()
    # a caller expecting other columns gets None too
    entry = spool.write_table("reject", "q6", table())
    assert spool.lookup("reject", "q6", expected_columns_hash=entry.columns_hash) == entry
    assert spool.lookup("reject", "q6", expected_columns_hash="0" * 16) is None
    # a file without a pointer
    pq.write_table(table(), spool.path_for("reject", "q7"))
    assert spool.lookup("reject", "q7") is None and not spool.path_for("reject", "q7").exists()


def test_cleanup_removes_expired_orphans_and_stale_temps(backend: str, clock: Clock) -> None:
    spool = QuerySpool(clock=clock)
    spool.write_table("reject", "keep", table(), ttl_seconds=1000)
    spool.write_table("reject", "old", table(), ttl_seconds=10)
    spool.write_table("hold", "old2", table(), ttl_seconds=10)
    pq.write_table(table(), spool.path_for("reject", "orphan"))
    stale = spool.root / "reject" / "x.parquet.abcd.tmp"
    fresh = spool.root / "reject" / "y.parquet.abcd.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    grace = get_settings().query_spool_tmp_grace_seconds
    os.utime(stale, (clock.now - grace - 10,) * 2)
    clock.now += 20
    report = spool.cleanup()
    assert (report.ran, report.expired, report.orphans, report.temps) == (True, 2, 1, 1)
    assert not spool.path_for("reject", "orphan").exists() and not stale.exists() and fresh.exists()
    assert not spool.path_for("reject", "old").exists() and not spool.path_for("hold", "old2").exists()
    assert spool.lookup("reject", "keep") is not None
    if backend == "local":
        sidecar = spool.root / "reject" / "gone.meta.json"
        sidecar.write_text("{}")
        assert spool.cleanup().orphans == 1 and not sidecar.exists()
    assert spool.cleanup().orphans == 0 and spool.lookup("reject", "keep") is not None


def test_cleanup_skips_while_another_holds_the_lock(backend: str) -> None:
    spool = QuerySpool()
    spool.path_for("reject", "x").parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table(), spool.path_for("reject", "orphan"))
    if backend == "redis":
        lock = get_redis().lock(key("spool", "cleanup-lock"), timeout=10)  # type: ignore[union-attr]
        assert lock.acquire(blocking=False)
        try:
            assert spool.cleanup().ran is False
        finally:
            lock.release()
    else:
        done: list[bool] = []
        with FileLock(str(spool.root / ".cleanup.lock")):
            t = threading.Thread(target=lambda: done.append(spool.cleanup().ran))
            t.start()
            t.join()
        assert done == [False]
    assert spool.path_for("reject", "orphan").exists()
    assert spool.cleanup().orphans == 1


def test_cleanup_loop_runs_until_stopped(backend: str) -> None:
    spool = QuerySpool()
    spool.path_for("reject", "x").parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table(), spool.path_for("reject", "orphan"))
    stop = threading.Event()
    thread = spool.start_cleanup_loop(stop, interval=0.05)
    deadline = time.monotonic() + 5
    while spool.path_for("reject", "orphan").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(2)
    assert not thread.is_alive() and not spool.path_for("reject", "orphan").exists()


def test_size_cap_warns_then_refuses(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    probe = QuerySpool(max_bytes=10**9).write_table("reject", "probe", table(2000))
    size = probe.size
    QuerySpool(max_bytes=10**9).drop("reject", "probe")
    spool = QuerySpool(max_bytes=int(size * 2.5), warn_ratio=0.5)
    with caplog.at_level(logging.WARNING, logger="mesdash.core.batch.spool"):
        spool.write_table("reject", "a", table(2000))
        assert not caplog.records
        spool.write_table("reject", "b", table(2000))
        assert any("query spool at" in r.getMessage() for r in caplog.records)
    with pytest.raises(SpoolFull):
        spool.write_table("reject", "c", table(2000))
    assert not spool.path_for("reject", "c").exists()
    assert [p.name for p in (spool.root / "reject").iterdir() if p.name.endswith(".tmp")] == []
    # refused before writing once the spool is past its cap
    over = QuerySpool(max_bytes=size)
    with pytest.raises(SpoolFull):
        over.write_table("reject", "d", table(1))
    spool.drop("reject", "a")
    assert spool.write_table("reject", "c", table(2000)).rows == 2000


def test_reader_and_cleanup_during_a_rewrite_never_remove_the_new_entry(
    backend: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset rewritten after its entry expired: a view's ``lookup`` and a cleanup pass
    that look between the rewrite's rename and its pointer update see the old, expired
    pointer beside the new file. They used to drop both — the dataset just built was gone.
    Now they check again under the entry lock and find the new entry."""
    spool = QuerySpool(clock=clock)
    spool.write_table("resource", "q9", table(3), ttl_seconds=10)
    clock.now += 20  # the old entry expired
    others: list[threading.Thread] = []
    seen: dict[str, object] = {}
    save = QuerySpool._save_meta

    def save_late(self: QuerySpool, entry: object) -> None:
        reader = threading.Thread(target=lambda: seen.update(lookup=QuerySpool(clock=clock).lookup("resource", "q9")))
        sweeper = threading.Thread(target=lambda: seen.update(cleanup=QuerySpool(clock=clock).cleanup()))
        others.extend((reader, sweeper))
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(0.5)  # they look now, while the file is new and the pointer old
        save(self, entry)  # type: ignore[arg-type]

    monkeypatch.setattr(QuerySpool, "_save_meta", save_late)
    entry = spool.write_table("resource", "q9", table(50), ttl_seconds=60)
    monkeypatch.setattr(QuerySpool, "_save_meta", save)
    for thread in others:
        thread.join(10)
    assert not any(thread.is_alive() for thread in others)
    assert seen["lookup"] == entry  # the reader got the new entry
    report = seen["cleanup"]
    assert (report.expired, report.orphans) == (0, 0)  # type: ignore[attr-defined]
    assert spool.lookup("resource", "q9") == entry
    assert spool.read("resource", "q9").num_rows == 50  # type: ignore[union-attr]
