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
# dev includes the [semantic] extra: distil its static model once per machine, now, into the
# user cache (~/.cache/tdm-dagster; about a minute on two cores) rather than at first use.
.venv/bin/python -m tdm_dagster.gate.semantic.model
echo "installed into $(pwd)/.venv" >&2
