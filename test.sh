#!/usr/bin/env bash
# The whole test suite, on SQLite and PostgreSQL. Arguments go to pytest, e.g. ./test.sh -k csv
set -euo pipefail
cd "$(dirname "$0")"
scripts/venv.sh test
scripts/services.sh
exec .venv/bin/python -m pytest "$@"
