#!/usr/bin/env bash
# The test command: sets up .venv, starts PostgreSQL and Redis if needed, runs the suite.
# Extra arguments go to pytest (e.g. scripts/test.sh --run-stress, scripts/test.sh -k lineage).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/services.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
