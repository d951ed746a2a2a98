"""The code location: every asset, check, job, sensor, schedule and resource, in one place.

Loading it reads ``$TDM_HOME/config.yaml`` (an invalid file fails the load with a
message naming the key) and must stay fast: no great_expectations, torch or
transformers at import time; the checks and resources import them when they run.
"""

import os

import dagster as dg

from tdm_dagster.assets import batch_assets, training_dataset
from tdm_dagster.assets.collect import mined_sources
from tdm_dagster.assets.queue import queue_recheck
from tdm_dagster.assets.stats import data_stats
from tdm_dagster.assets.train import (
    checkpoint,
    checkpoint_evaluation,
    deployed_model,
)
from tdm_dagster.checks import quality_suites
from tdm_dagster.config.settings import load_config
from tdm_dagster.runs.console import routine_console_logger
from tdm_dagster.jobs import (
    batch_pipeline,
    deduplicate_dataset,
    deploy_best,
    export_dataset,
    generate_and_queue,
    ingest_inbox,
    train_evaluate_deploy,
    training_pipeline,
)
from tdm_dagster.resources import (
    InferenceServerResource,
    SkillApiResource,
    TdmHomeResource,
    TrainerResource,
)
from tdm_dagster.schedules import build_schedules
from tdm_dagster.sensors import (
    check_failure_alert_sensor,
    inbox_sensor,
    queue_low_sensor,
    run_failure_alert_sensor,
    train_ready_sensor,
)

_config = load_config()


def _api_key():
    """The key is read from its env var at run time (``dg.EnvVar``), never stored."""
    name = _config.inference.api_key_env
    return dg.EnvVar(name) if os.environ.get(name) else None


defs = dg.Definitions(
    assets=[
        mined_sources, *batch_assets, queue_recheck, data_stats, training_dataset, checkpoint, checkpoint_evaluation, deployed_model
    ],
    asset_checks=[quality_suites],
    jobs=[
        batch_pipeline, generate_and_queue, ingest_inbox, training_pipeline, deploy_best, train_evaluate_deploy,
        deduplicate_dataset, export_dataset,
    ],
    loggers={"console": routine_console_logger},  # routine failures without a stack trace
    sensors=[queue_low_sensor, inbox_sensor, train_ready_sensor, check_failure_alert_sensor, run_failure_alert_sensor],
    schedules=build_schedules(_config.schedules),
    resources={
        "tdm": TdmHomeResource(),
        "inference": InferenceServerResource(
            base_url=_config.inference_base_url,
            api_key=_api_key(),
            model=_config.inference.model,
            timeout_sec=_config.inference.timeout_sec,
            max_concurrency=_config.inference.max_concurrency,
            max_attempts=_config.inference.max_attempts,
        ),
        "trainer": TrainerResource(device=os.environ.get("TDM_TRAINER_DEVICE")),
        "skill_api": SkillApiResource(
            syllo_url=_config.skill_api.syllo_url,
            binary_url=_config.skill_api.binary_url,
            timeout_sec=_config.skill_api.timeout_sec,
        ),
    },
)
