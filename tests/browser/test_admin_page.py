"""The /admin page in a real browser (Debian chromium): public health, sign-in with a token,
the status tiles, and the restart form through cooldown, churn block and override."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from faults import SignalRecorder, free_port, signal_recorder, wait_until
from mesdash.admin.auth import hash_token

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
TOKEN = "page-admin-token"
COOLDOWN = 1.0


@pytest.fixture
def site(tiny_duckdb_url: str, tmp_path: Path) -> Iterator[tuple[str, SignalRecorder]]:
    port = free_port()
    env = {
        **os.environ,
        "MESDASH_ENV": "testing",
        "MESDASH_DATABASE_URL": tiny_duckdb_url,
        "MESDASH_API_TOKENS": f"{hash_token(TOKEN)}:admin",
        "MESDASH_RUN_DIR": str(tmp_path / "run"),
        "MESDASH_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        "WORKER_RESTART_COOLDOWN": str(COOLDOWN),
        "WORKER_RESTART_CHURN_THRESHOLD": "2",
    }
    with signal_recorder(tmp_path / "run") as recorder:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "mesdash.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(base + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(up, 60, interval=0.2, what="uvicorn serving")
            yield base, recorder
        finally:
            proc.terminate()
            proc.wait(15)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"uncaught errors on the page: {errors}"


def _submit(page: Page) -> None:
    page.click("#restart-submit")


def _message(page: Page, text: str) -> None:
    page.wait_for_function("t => document.getElementById('restart-msg').textContent.includes(t)", arg=text)


def test_admin_page_restart_flow(site: tuple[str, SignalRecorder], page: Page) -> None:
    base, recorder = site
    page.goto(base + "/admin")
    page.wait_for_selector("#main[data-state=public]")
    page.wait_for_function("document.getElementById('st-status').textContent === 'healthy'")
    assert page.is_disabled("#restart-submit")

    page.fill("#token-input", "not-the-token")
    page.click("#sign-in")
    page.wait_for_function("document.getElementById('auth-state').textContent === 'token not accepted'")

    page.fill("#token-input", TOKEN)
    page.click("#sign-in")
    page.wait_for_selector("#main[data-state=ready]")
    assert page.text_content("#st-breaker") == "CLOSED"
    assert page.text_content("#st-policy") == "allowed"
    assert page.text_content("#rec-action") == "observe"
    assert f"gunicorn master {recorder.pid}" in (page.text_content("#workers-note") or "")
    assert page.evaluate("sessionStorage.getItem('mesdash.adminToken')") == TOKEN

    page.fill("#restart-reason", "first from the page")
    _submit(page)
    _message(page, "Accepted (request")
    _submit(page)
    _message(page, "Cooling down: retry in")
    time.sleep(COOLDOWN + 0.1)
    page.fill("#restart-reason", "second from the page")
    _submit(page)
    _message(page, "Accepted (request")
    time.sleep(COOLDOWN + 0.1)
    _submit(page)
    _message(page, "Blocked by the churn policy")
    assert page.is_visible("#override-box")
    assert page.text_content("#restart-submit") == "Restart with override"
    assert "churn threshold" in (page.text_content("#override-why") or "")

    _submit(page)
    _message(page, "Tick the acknowledgement")
    page.check("#override-ack")
    page.fill("#override-reason", "line down, approved by shift lead")
    _submit(page)
    _message(page, ", override)")
    assert page.is_hidden("#override-box")

    page.wait_for_function("document.querySelectorAll('#history-table tbody tr').length === 3")
    history = page.inner_text("#history-table")
    assert "first from the page" in history and "second from the page" in history
    page.wait_for_function("document.getElementById('audit-table').innerText.includes('override_accepted')")
    assert recorder.hups() == 0  # the watchdog, not the page, signals gunicorn

    page.click("#sign-out")
    assert page.evaluate("sessionStorage.getItem('mesdash.adminToken')") is None
    assert page.is_disabled("#restart-submit")
