#!/usr/bin/env bash
# Creates .venv (once) and installs fedsparse into it, editable, with the `simulation`
# (Ray) and `test` extras. torch comes first (scripts/install_torch.sh: the CPU wheel), so
# pip never pulls multi-GB CUDA wheels on a CPU box.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.fedsparse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  bash scripts/install_torch.sh .venv/bin/python
  .venv/bin/python -m pip install --quiet -e ".[simulation,test]"
  touch "$stamp"
fi
