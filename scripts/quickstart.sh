#!/usr/bin/env bash
# Sets up (if needed) and runs the default federation: digits, no network needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fedsparse run configs/quickstart.yaml "$@"
