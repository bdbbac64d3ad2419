"""The deployment files in ``deploy/``: what the units promise operators (restart policy,
memory limits, the allocator the stress stack runs with) and that the production
environment example names only settings that exist (``Settings`` ignores unknown names,
so a misspelt one would silently do nothing)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from pydantic import AliasChoices

from mesdash.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
sys.path.insert(0, str(Path(__file__).parent / "stress"))

from stack import WATCHDOG_UNIT, WEB_UNIT, WORKER_UNIT, unit_environment, unit_service  # noqa: E402

UNITS = {WEB_UNIT: ("serve", "on-failure"), WORKER_UNIT: ("worker", "always"), WATCHDOG_UNIT: ("watchdog", "always")}
SIZE = re.compile(r"^(\d+)([KMG])$")


def size_bytes(value: str) -> int:
    found = SIZE.match(value)
    assert found, value
    return int(found[1]) * 1024 ** "KMG".index(found[2]) * 1024


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_a_unit_restarts_and_has_memory_limits(unit: str) -> None:
    command, restart = UNITS[unit]
    service = unit_service(unit)
    assert service["ExecStart"] == [f"/opt/mesdash/.venv/bin/mesdash {command}" + (" --host 0.0.0.0 --port 8000" if command == "serve" else "")]
    assert service["Restart"] == [restart] and service["RestartSec"] == ["5"]
    high, most = size_bytes(service["MemoryHigh"][0]), size_bytes(service["MemoryMax"][0])
    assert 0 < high < most  # throttled and reclaimed before the hard stop


def test_the_web_unit_preloads_jemalloc_that_this_machine_has() -> None:
    """The stress stack runs gunicorn with the web unit's environment; the library must be
    there, or the loader would warn and the soak would measure glibc malloc instead."""
    preload = unit_environment(WEB_UNIT)["LD_PRELOAD"]
    assert preload.endswith("libjemalloc.so.2") and Path(preload).is_file()
    assert "LD_PRELOAD" not in unit_environment(WORKER_UNIT)


def test_the_environment_example_names_only_real_settings() -> None:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice).upper() for choice in field.validation_alias.choices)
    example = (DEPLOY / "mesdash.env.example").read_text().splitlines()
    keys = [line.partition("=")[0] for line in example if line and not line.startswith("#")]
    assert len(keys) > 10
    assert [key for key in keys if key not in names] == []
