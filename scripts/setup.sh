#!/usr/bin/env bash
# Creates .venv and installs mesdash with pinned versions (constraints.txt). Idempotent.
# Usage: scripts/setup.sh [extra]   (extra: "test" adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.mesdash-installed-${extra:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  target="."
  [ -n "$extra" ] && target=".[$extra]"
  .venv/bin/python -m pip install --quiet -c constraints.txt -e "$target"
  touch "$stamp"
fi
