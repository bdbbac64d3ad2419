"""No log line carries a password or a bearer token, with real connection failures.

A private PostgreSQL cluster makes ``fault_pw`` log in with scram-sha-256; the app is given
that user with a wrong password, and a Redis URL with a password pointing at a closed port.
The failures are logged by the drivers' error paths; a psycopg URI error — whose message
contains the whole URL — is logged with its traceback. The captured logs (pytest's caplog
and a real FileHandler on the root logger) are grepped for every secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from faults import PrivatePostgres, app_client, free_port, private_postgres
from mesdash.core.redact import MASK, RedactingFilter, redact

RIGHT_PG = "R1ght-Pg-pass"
WRONG_PG = "Wr0ng-Pg-pass"
REDIS_PW = "R3dis-pass-xyz"
TOKEN = "tok3n-Abc.def_123"


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres(password_user="fault_pw", password=RIGHT_PG) as server:
        yield server


def _url(pg: PrivatePostgres, password: str) -> str:
    return pg.url("postgres", user="fault_pw", password=password)


def test_the_cluster_really_checks_the_password(pg: PrivatePostgres) -> None:
    psycopg.connect(_url(pg, RIGHT_PG), connect_timeout=3).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_url(pg, WRONG_PG), connect_timeout=3)


def test_connection_failures_never_log_secrets(
    pg: PrivatePostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "app.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    url = _url(pg, WRONG_PG)
    redis_url = f"redis://:{REDIS_PW}@127.0.0.1:{free_port()}/0"
    try:
        with app_client(monkeypatch, MESDASH_DATABASE_URL=url, MESDASH_REDIS_URL=redis_url) as client:
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json()["services"]["database"]["code"] == "DB_UNAVAILABLE"
            assert health.json()["services"]["redis"]["status"] == "error"
            response = client.post("/api/trace/lineage", json={"container_ids": ["4881038000100000"]})
            assert response.status_code == 503 and response.json()["code"] == "DB_UNAVAILABLE"
            for text in (health.text, response.text):
                assert WRONG_PG not in text and REDIS_PW not in text

            # a real driver message that contains the whole URL, logged with its traceback
            broken = url.replace("@127.0.0.1", "@[127.0.0.1")
            with pytest.raises(psycopg.ProgrammingError) as info:
                psycopg.connect(broken)
            assert WRONG_PG in str(info.value)
            log = logging.getLogger("mesdash.test")
            try:
                raise RuntimeError(f"cannot connect: {info.value}")
            except RuntimeError:
                log.exception("warehouse connect failed")
            log.warning("retrying %s, redis %s, Authorization: Bearer %s", url, redis_url, TOKEN)
    finally:
        root.removeHandler(handler)
        handler.close()

    written = log_file.read_text()
    captured = [written, caplog.text, "\n".join(r.getMessage() for r in caplog.records)]
    for text in captured:
        for secret in (WRONG_PG, RIGHT_PG, REDIS_PW, TOKEN):
            assert secret not in text, f"{secret!r} leaked into the logs"
    # the failures were logged, with the secrets masked
    assert 'password authentication failed for user "fault_pw"' in written
    assert "Redis unavailable" in written
    assert f"fault_pw:{MASK}@[127.0.0.1" in written  # inside the logged traceback
    assert f"retrying postgresql://fault_pw:{MASK}@127.0.0.1" in written
    assert f"redis://:{MASK}@127.0.0.1" in written
    assert f"Bearer {MASK}" in written


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("postgresql+psycopg://scott:tiger@db:5432/x failed", "tiger"),
        ("oracle+oracledb://u:p%40ss@host/?service_name=S", "p%40ss"),
        ("redis://:hunter2@cache:6379/0", "hunter2"),
        ("dsn host=h password=s3cr3t dbname=x", "s3cr3t"),
        ("PASSWORD: 'QuotedSecret'", "QuotedSecret"),
        ("Authorization: Bearer abc.DEF-123", "abc.DEF-123"),
    ],
)
def test_redact_masks_each_form(raw: str, secret: str) -> None:
    assert secret not in redact(raw)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s", (raw,), None)
    RedactingFilter().filter(record)
    assert secret not in record.getMessage()
