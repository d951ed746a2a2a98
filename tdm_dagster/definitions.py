"""The code location Dagster loads (``workspace.yaml``, ``dagster job execute -m
tdm_dagster.definitions``): every asset, check, job, sensor, schedule and resource.

Loading it reads ``$TDM_HOME/config.yaml`` (an invalid file fails the load with a
message naming the key) and must stay fast: no great_expectations, torch or
transformers at import time. Nothing in the package imports this module; the CLI
builds its own with :func:`tdm_dagster.location.build_definitions`.
"""

from tdm_dagster.location import build_definitions

defs = build_definitions()
