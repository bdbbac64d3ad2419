#!/usr/bin/env bash
# The demo command: sets up .venv, generates the embedded demo warehouse if missing
# (./var/mes.duckdb, about a minute), serves it and prints the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/mesdash demo "$@"
