#!/usr/bin/env bash
# One-command install: a virtual environment in .venv with every pinned dependency, offline-capable
# model files put in the project's model cache. Safe to run again.
#   bash scripts/install.sh            # then: . .venv/bin/activate
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first and alone: its pin selects the local CPU wheel on CPU machines
python -m pip install -q "$(grep -E '^torch==' requirements.txt)"
python -m pip install -q -r requirements.txt
if [ -f scripts/fetch_models.py ]; then python scripts/fetch_models.py; fi
echo "installed: . .venv/bin/activate"
