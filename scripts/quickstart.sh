#!/usr/bin/env bash
# Install, then run the loop once on the embedded default: built-in generators, state
# under $TDM_HOME (default ./.tdm here), runs recorded in $DAGSTER_HOME for the UI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export TDM_HOME=${TDM_HOME:-$PWD/.tdm}
export DAGSTER_HOME=${DAGSTER_HOME:-$TDM_HOME/dagster}
# Creates both homes and the instance once, under a lock; its dagster.yaml (if missing):
# telemetry off (this tool never phones home) and run monitoring on.
.venv/bin/tdm init
.venv/bin/dagster job execute -m tdm_dagster.definitions -j generate_and_queue
.venv/bin/tdm status
cat <<MSG

Done. The batch, its report and the queue are under $TDM_HOME.
Open the UI (asset graph, checks, this run):
  TDM_HOME=$TDM_HOME DAGSTER_HOME=$DAGSTER_HOME .venv/bin/dagster dev
then browse to http://127.0.0.1:3000
MSG
