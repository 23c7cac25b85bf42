#!/usr/bin/env bash
# Creates .venv (once) and installs fedsparse into it. torch comes first, pinned to the
# CPU wheel where that is available, so pip never pulls multi-GB CUDA wheels on a CPU box.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.fedsparse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0" \
      || .venv/bin/python -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
  fi
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
