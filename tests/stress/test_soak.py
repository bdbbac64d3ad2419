"""Soak under ``--run-stress``: ``STRESS_SOAK_SECONDS`` (default 1800 — the issue's 30
minutes) of mixed load at 50 users on the demo warehouse; the rules are in ``soak.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from soak import EVENT_CACHE_TTL, check, run_soak
from stack import save_summary

from mesdash.lineage.service import LINEAGE_CACHE_TTL


@pytest.mark.stress
@pytest.mark.timeout(7200)
def test_soak_mixed_load(demo_duckdb_url: str, tmp_path: Path) -> None:
    seconds = float(os.environ.get("STRESS_SOAK_SECONDS", "1800"))
    ttl = 60
    result = run_soak(
        demo_duckdb_url,
        tmp_path,
        users=int(os.environ.get("STRESS_USERS", "50")),
        # until the bounded caches are full: the web workers' RSS rose for ~540 s of load at 50 users
        # (process L1 and DuckDB buffer pool filling to their caps) and stayed flat after
        warmup=float(os.environ.get("STRESS_SOAK_WARMUP_SECONDS", "600")),
        seconds=seconds,
        ttl=ttl,
        rate_window=30,
        settle=max(EVENT_CACHE_TTL, LINEAGE_CACHE_TTL) + ttl + 90,  # the longest TTLs the soak cannot shorten
        spill_rows=2000,
    )
    save_summary(f"soak-{int(seconds)}s", result)
    check(result, settle=True)
