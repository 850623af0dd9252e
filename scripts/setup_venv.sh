#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install mxcompress with its test extra.
# Idempotent: a second run only re-checks the install. Prints the venv's python path last.
#   VENV=path  (default: .venv in the repository)   PYTHON=python3.11 (the interpreter to use)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
if [ -z "${PYTHON:-}" ]; then
  for candidate in python3.11 python3.10 python3.9 python3.8 python3; do
    command -v "$candidate" >/dev/null 2>&1 && { PYTHON=$candidate; break; }
  done
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment $venv with $PYTHON" >&2
  "$PYTHON" -m venv "$venv"
fi
stamp="$venv/.mxcompress-installed"
if [ ! -f "$stamp" ] || [ "$root/setup.py" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel >&2
  "$venv/bin/python" -m pip install -q -e "$root[test]" >&2
  touch "$stamp"
else
  "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$root" >&2
fi
echo "$venv/bin/python"
