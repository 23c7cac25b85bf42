#!/usr/bin/env bash
# Usage: install_torch.sh PYTHON
# Installs torch into PYTHON's environment unless it imports there already: the CPU wheel
# torch==2.13.0 where pip finds it, else a CPU build from PyTorch's own index, so pip
# never pulls multi-GB CUDA wheels on a CPU box. scripts/setup.sh and the packaging test
# install torch this way, before fedsparse, so that pip keeps it.
set -euo pipefail
PY=${1:?usage: install_torch.sh PYTHON}
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install --quiet "torch==2.13.0" \
    || "$PY" -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
fi
