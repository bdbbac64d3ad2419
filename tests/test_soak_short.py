"""The default suite's soak: 30 s of mixed load after a 60 s warm-up at 10 users on the
tiny warehouse against the production-shaped stack (gunicorn 2 workers on the web unit's
jemalloc, 2 RQ workers, watchdog, private Redis). The issue's 2-minute variant
(``seconds=120``) passes with margin since jemalloc, but its 90 s more put the suite over
10 minutes on these machines (docs/reliability.md, "Default-suite soak").
Footprint rules only — RSS growth < 15 %, open fds back to the warm-up count, no Redis key
without a TTL that was not there before, no load violation; the TTL-bound checks need the
long run (``tests/stress/test_soak.py``, ``--run-stress``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "stress"))

from soak import check, run_soak
from stack import save_summary

from faults import TINY_END


@pytest.mark.timeout(240)
def test_soak_short(tiny_duckdb_url: str, tmp_path: Path) -> None:
    """The default suite's variant: 30 s at 10 users on the tiny warehouse."""
    result = run_soak(
        tiny_duckdb_url,
        tmp_path,
        users=10,
        warmup=60,  # on tiny a web worker's RSS rises through the first minutes of load (caches, allocator)
        l1_bytes=8 * 1024**2,  # 30 s cannot outlast a 256 MB cache filling; 8 MB fills in the warm-up
        seconds=30,
        ttl=120,  # nothing expires inside the run: no 410 CACHE_EXPIRED by design
        rate_window=5,
        redis_max_idle=5,  # the Redis sockets of the load's peak close 5 s after it
        settle=0,
        last_day=TINY_END,
    )
    save_summary("soak-short", result)
    check(result, settle=False)
