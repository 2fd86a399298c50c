#!/usr/bin/env bash
# Make ./.venv hold the hub and what it needs (plus the EXTRAS given, e.g. "test").
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "the hub needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-${extras:-base}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing the hub into .venv ..." >&2
  spec="."; [ -n "$extras" ] && spec=".[$extras]"
  log=".venv/install.log"
  if ! .venv/bin/python -m pip install --disable-pip-version-check -e "$spec" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "installation failed; the whole log is in $log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
