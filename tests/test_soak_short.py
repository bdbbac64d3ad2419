"""The default suite's soak: the issue's 2 minutes of mixed load after a 60 s warm-up at
10 users on the tiny warehouse against the production-shaped stack (gunicorn 2 workers on the
web unit's jemalloc, 2 RQ workers, watchdog, private Redis) — ``SHORT_SOAK`` in
``tests/stress/soak.py``. It starts with the session and runs beside the other tests in a
niced process of its own (the ``short_soak`` fixture in ``tests/conftest.py``); this test
waits for it and applies the rules. Footprint rules only — RSS growth < 15 %, open fds back
to the warm-up count, no Redis key without a TTL that was not there before, no load
violation; the TTL-bound checks need the long run (``tests/stress/test_soak.py``,
``--run-stress``). docs/reliability.md, "Default-suite soak", has its runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "stress"))

from soak import BackgroundSoak, check
from stack import save_summary


@pytest.mark.timeout(600)
def test_soak_short(short_soak: BackgroundSoak) -> None:
    """Waits for the soak that started with the session (~3.5 minutes in all, mostly over
    by the time this test runs) and checks its footprint and load rules."""
    result = short_soak.result(timeout=540)
    save_summary("soak-short", result)
    check(result, settle=False)
