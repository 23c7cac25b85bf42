#!/usr/bin/env bash
# Sets up (if needed), checks lint, format and types, and runs the whole test suite
# (offline when the data root holds MNIST).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FLWR_TELEMETRY_ENABLED=0 RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=0
# Local dataset copies: $FEDSPARSE_DATA if set, else ../shared/data beside the clone if it
# exists. With MNIST there the suite runs offline; without, it fetches MNIST from the hub.
if [ -z "${FEDSPARSE_DATA:-}" ] && [ -d ../shared/data ]; then
  export FEDSPARSE_DATA="$(cd ../shared/data && pwd)"
fi
if [ -n "${FEDSPARSE_DATA:-}" ] && [ -d "$FEDSPARSE_DATA/mnist" ]; then
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
fi
# the lint and type gate first: style and types are checked like behaviour
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
