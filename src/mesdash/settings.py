"""One typed settings object, read once.

Every environment variable mesdash understands is a field here; no other module reads the
environment. Field names are the environment names in lower case (pydantic-settings matches
them case-insensitively); connection settings carry the ``MESDASH_`` prefix as aliases.

Profiles (``MESDASH_ENV``) change defaults only: a value set in the environment always wins.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["production", "staging", "development", "testing"]

SCHEMA_VERSION = 1
DEFAULT_DATABASE_URL = "duckdb:///./var/mes.duckdb"

# Per-profile defaults; anything not listed falls back to the field default.
# The testing profile shrinks every timer so the default suite stays fast.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "production": {"db_slow_max_concurrent": 5},
    "staging": {"db_slow_max_concurrent": 5},
    "development": {"db_slow_max_concurrent": 3},
    "testing": {
        "db_slow_max_concurrent": 1,
        "circuit_breaker_open_wait_seconds": 2.0,
        "worker_restart_cooldown": 2.0,
        # jobs (core/jobs): heartbeat, stale bound, watchdog pass
        "job_heartbeat_seconds": 0.5,
        "job_heartbeat_stale_seconds": 3.0,
        "job_watchdog_interval_seconds": 0.5,
        "health_memo_seconds": 0.0,
        "db_pool_timeout": 2.0,
        "db_slow_semaphore_wait_seconds": 2.0,
        # admin, health, watchdog (mesdash.admin)
        "heavy_query_wait_seconds": 2.0,
        "heavy_query_lease_seconds": 2.0,
        "worker_heartbeat_seconds": 0.5,
        "watchdog_interval_seconds": 0.5,
        "watchdog_stuck_seconds": 2.0,
        # cache (core/cache)
        "cache_lease_seconds": 2.0,
        "cache_follower_wait_seconds": 10.0,
        "cache_l2_backoff_seconds": 1.0,
    },
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True
    )

    # --- profile and connections -------------------------------------------------------
    env: Profile = Field("development", validation_alias=AliasChoices("MESDASH_ENV", "env"))
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("MESDASH_DATABASE_URL", "database_url"),
    )
    redis_url: str | None = Field(None, validation_alias=AliasChoices("MESDASH_REDIS_URL", "redis_url"))
    cache_namespace: str | None = Field(
        None, validation_alias=AliasChoices("MESDASH_CACHE_NAMESPACE", "cache_namespace")
    )
    var_dir: Path = Field(Path("./var"), validation_alias=AliasChoices("MESDASH_VAR_DIR", "var_dir"))
    spool_dir: Path | None = Field(None, validation_alias=AliasChoices("MESDASH_SPOOL_DIR", "spool_dir"))
    run_dir: Path | None = Field(None, validation_alias=AliasChoices("MESDASH_RUN_DIR", "run_dir"))
    audit_log: Path | None = Field(None, validation_alias=AliasChoices("MESDASH_AUDIT_LOG", "audit_log"))
    api_tokens: str = Field("", validation_alias=AliasChoices("MESDASH_API_TOKENS", "api_tokens"))
    web_workers: int = Field(1, validation_alias=AliasChoices("MESDASH_WEB_WORKERS", "web_workers"))
    max_request_body_bytes: int = Field(
        2_000_000,
        validation_alias=AliasChoices("MESDASH_MAX_REQUEST_BODY_BYTES", "max_request_body_bytes"),
    )

    # --- warehouse: pooled path ----------------------------------------------------------
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_timeout: float = 30.0
    db_pool_recycle: int = 1800
    db_call_timeout_ms: int = 55_000
    db_pool_exhausted_retry_after_seconds: int = 5
    redis_unavailable_retry_after_seconds: int = 5  # 503 REDIS_UNAVAILABLE's retry hint
    # a pooled Redis connection idle this long has its socket closed (it reconnects when used)
    redis_max_idle_seconds: float = Field(300.0, gt=0)
    oracle_in_batch_size: int = 1000
    # embedded DuckDB, read-only (serve / worker) connections: buffer-pool cap per process
    # ("" keeps DuckDB's default, 80 % of RAM) and where big sorts / joins spill
    # (unset: {var_dir}/duckdb-tmp; each process uses a pid-named folder inside it)
    duckdb_memory_limit: str = Field("1GiB", pattern=r"(?i)^(|\d+(\.\d+)?\s*([KMGT]i?B|B))$")
    duckdb_temp_directory: Path | None = None
    # ... and when such a process's DuckDB holds more than this between queries (its cache and
    # the ART indexes it loaded, which DuckDB never unloads), it closes and reopens the file to
    # give it all back ("" never; core/db/drivers.py)
    duckdb_reopen_above: str = Field("512MiB", pattern=r"(?i)^(|\d+(\.\d+)?\s*([KMGT]i?B|B))$")

    # --- warehouse: slow path ------------------------------------------------------------
    db_slow_max_concurrent: int = 3
    db_slow_call_timeout_ms: int = 300_000
    db_slow_fetchmany_size: int = 5000
    db_slow_semaphore_wait_seconds: float = 30.0
    db_busy_retry_after_seconds: int = 5
    db_unavailable_retry_after_seconds: int = 10
    heavy_query_max_concurrent: int = 0  # 0: no cross-process cap

    # --- circuit breaker -----------------------------------------------------------------
    circuit_breaker_enabled: bool = True
    circuit_breaker_window_size: int = 10
    circuit_breaker_min_failures: int = 5
    circuit_breaker_failure_rate: float = 0.5
    circuit_breaker_open_wait_seconds: float = 30.0
    circuit_breaker_half_open_permits: int = 3
    circuit_breaker_slow_call_seconds: float = 30.0

    # --- health, admin, workers ----------------------------------------------------------
    health_memo_seconds: float = 5.0
    worker_restart_cooldown: float = 60.0
    worker_restart_churn_window_seconds: float = 600.0
    worker_restart_churn_threshold: int = 3
    # >>> jobs (core/jobs) >>>
    job_heartbeat_seconds: float = 10.0  # a running job refreshes its heartbeat this often
    job_heartbeat_stale_seconds: float = 60.0  # no heartbeat for this long: worker died, job failed
    job_watchdog_interval_seconds: float = 15.0  # a worker's sweep over running jobs
    job_inprocess_workers: int = 2  # threads running jobs without Redis
    job_timeout_seconds: int = 1800  # a job kind's default timeout
    job_ttl_seconds: int = 3600  # a finished / failed job's status and results live this long
    # <<< jobs <<<

    # --- admin, health, watchdog, metrics (mesdash.admin) --------------------------------
    health_probe_timeout_seconds: float = 3.0  # /health's own SELECT 1 and Redis PING
    heavy_query_wait_seconds: float = 600.0  # a background job waits this long for a cross-process slot
    heavy_query_lease_seconds: float = 60.0  # a slot of a dead process frees itself after this
    worker_heartbeat_seconds: float = 5.0  # gunicorn web workers touch {run}/workers/{pid}.json
    watchdog_interval_seconds: float = 5.0  # `mesdash watchdog` pass interval
    watchdog_stuck_seconds: float = 60.0  # a worker heartbeat older than this: worker stuck
    watchdog_memory_percent: float = 90.0  # system memory use that asks for a controlled restart
    watchdog_worker_max_rss_mb: int = 0  # a worker above this RSS asks for one (0: off)
    prometheus_multiproc_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR: metrics of all workers
    # gunicorn (production `mesdash serve`): idle keep-alive of a client connection, longer than
    # any proxy's upstream idle timeout in front of it; and on a reload, how long an old worker
    # waits for connections it accepted to send their request (admin/gunicorn_worker.py)
    web_keepalive_seconds: int = Field(75, ge=0)
    web_shutdown_grace_seconds: float = Field(1.0, ge=0)

    # --- events, lineage, trace ----------------------------------------------------------
    event_fetcher_max_workers: int = 2
    event_fetcher_cache_skip_cid_threshold: int = 10_000
    event_fetcher_max_total_rows: int = 500_000
    event_fetcher_batch_timeout_seconds: float = 60.0
    max_split_depth: int = 20
    lineage_max_seeds: int = 50_000
    trace_sync_cid_limit: int = 2000
    trace_events_cid_limit: int = 200_000
    trace_stream_batch_size: int = 5000
    trace_job_timeout_seconds: int = 1800
    trace_job_ttl_seconds: int = 3600
    trace_job_id_batch_size: int = 1000  # lots per part file (one warehouse query per domain)
    trace_job_first_batch_size: int = Field(100, ge=1)  # a domain's first batch: rows stream early
    trace_sync_max_seconds: float = 30.0  # estimated inline time above this: a job instead
    msd_sync_max_days: int = 62  # a defect analysis over more days runs as a job (202)
    msd_sync_max_lots: int = 2000  # ... and one over more given lots
    msd_seed_batch_size: int = 5000  # detected lots whose genealogy and events are read together

    # --- batch engine and reports --------------------------------------------------------
    batch_chunk_max_memory_mb: int = 256
    batch_query_time_threshold_days: int = 60
    batch_closed_chunk_ttl: int = 86_400
    query_spool_max_bytes: int = 20 * 1024**3
    # >>> batch engine, spill and spool (core/batch) >>>
    batch_open_chunk_ttl: int = 300  # the chunk holding today's factory day: never cached longer
    batch_chunk_ttl: int = 900  # id chunks (lot batches) cached this long; the open chunk at most this
    reject_engine_spill_enabled: bool = True  # merge_chunks may spill to a Parquet file
    reject_engine_max_total_rows: int = 1_000_000  # merged result above this: spilled to Parquet
    reject_engine_max_result_mb: int = 64  # ... or above this many MB of Arrow memory
    query_spool_ttl_seconds: int = 21_600  # a spooled dataset lives this long
    query_spool_warn_ratio: float = 0.8  # spool usage above this share of the cap: warning log
    query_spool_cleanup_interval_seconds: float = 600.0  # cleanup loop period
    query_spool_tmp_grace_seconds: float = 3600.0  # a .tmp older than this is an orphan
    # <<< batch engine, spill and spool <<<
    # >>> hold / equipment / job reports (reports/hold, resource, jobs) >>>
    # hold reasons counted as quality holds (comma-separated HOLDREASONNAME values)
    hold_quality_reasons: str = "品質異常,外觀異常,X-Ray異常,良率偏低,MRB判定,SPC異常,客訴追蹤"
    hold_today_refresh_seconds: int = 60  # the "today" hold snapshot is re-read at most this often
    report_job_threshold_days: int = 180  # hold / equipment / jobs ranges above this answer 202 (a job)
    # <<< hold / equipment / job reports <<<

    # --- two-level cache (core/cache) ----------------------------------------------------
    cache_l1_max_entries: int = 4096  # process-wide L1: entries ...
    cache_l1_max_bytes: int = 256 * 1024**2  # ... and bytes of encoded values
    cache_lease_seconds: float = 10.0  # cross-process single-flight lease (renewed by its leader)
    # longest a follower (of the cache, or of a batch plan's lock) waits before computing itself
    cache_follower_wait_seconds: float = 90.0
    cache_follower_poll_seconds: float = 0.05  # first poll interval of a waiting follower (backs off)
    cache_l2_backoff_seconds: float = 5.0  # after a Redis error, L1 only for this long

    # >>> lot resolution and per-domain rate limits (trace/resolve, core/ratelimit) >>>
    container_resolve_max_per_token: int = 5000  # one input token may expand to this many lots
    container_resolve_max_total: int = 50_000  # all tokens of one request together
    evt_history_rate_max_requests: int = 20
    evt_history_rate_window_seconds: float = 60.0
    evt_materials_rate_max_requests: int = 20
    evt_materials_rate_window_seconds: float = 60.0
    evt_rejects_rate_max_requests: int = 20
    evt_rejects_rate_window_seconds: float = 60.0
    evt_holds_rate_max_requests: int = 20
    evt_holds_rate_window_seconds: float = 60.0
    evt_jobs_rate_max_requests: int = 20
    evt_jobs_rate_window_seconds: float = 60.0
    evt_upstream_history_rate_max_requests: int = 20
    evt_upstream_history_rate_window_seconds: float = 60.0
    evt_downstream_rejects_rate_max_requests: int = 20
    evt_downstream_rejects_rate_window_seconds: float = 60.0
    # <<< lot resolution and per-domain rate limits <<<

    @model_validator(mode="before")
    @classmethod
    def _apply_profile_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lowered = {str(k).lower(): k for k in data}
        profile = str(data.get(lowered.get("mesdash_env", ""), data.get("env", "development")))
        for name, value in PROFILE_DEFAULTS.get(profile.lower(), {}).items():
            if name not in lowered:
                data[name] = value
        return data

    # --- derived values ------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        """duckdb | postgresql | oracle, from the database URL scheme."""
        scheme = self.database_url.split(":", 1)[0].split("+", 1)[0].lower()
        return {"postgres": "postgresql"}.get(scheme, scheme)

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.var_dir / "spool"

    @property
    def run_path(self) -> Path:
        return self.run_dir or self.var_dir / "run"

    @property
    def duckdb_temp_path(self) -> Path:
        return self.duckdb_temp_directory or self.var_dir / "duckdb-tmp"

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log or self.var_dir / "audit.jsonl"

    @property
    def namespace(self) -> str:
        """Prefix of every Redis key: two warehouses never share an entry."""
        if self.cache_namespace:
            return self.cache_namespace
        from mesdash.core.redact import strip_password

        basis = f"{self.dialect}|{strip_password(self.database_url)}|v{SCHEMA_VERSION}"
        return "mesdash:" + hashlib.sha256(basis.encode()).hexdigest()[:10]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
