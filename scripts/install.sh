#!/usr/bin/env bash
# Create .venv and install tdm-dagster with its test tools. Idempotent.
# torch: CPU build by default (TDM_TORCH=torch==2.13.0). On a CUDA box, install the CUDA
# build you want first (or set TDM_TORCH to it), e.g. TDM_TORCH="torch==2.13.0".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "${TDM_TORCH:-torch==2.13.0}" -e '.[dev]'
echo "installed into $(pwd)/.venv" >&2
