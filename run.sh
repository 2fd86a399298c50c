#!/usr/bin/env bash
# Quick start: install the hub into ./.venv and run it (SQLite in ./var, http://127.0.0.1:8080).
# Arguments are passed to `hub run`, e.g. ./run.sh --config hub.toml
set -euo pipefail
cd "$(dirname "$0")"
scripts/venv.sh
exec .venv/bin/hub run "$@"
