"""The code location, built: every asset, check, job, sensor, schedule and resource.

``definitions.py`` holds the one instance Dagster loads; the CLI builds its own here, so
no module imports ``definitions``. Building reads ``$TDM_HOME/config.yaml`` (an invalid
file fails with a message naming the key) and must stay fast: no great_expectations,
torch or transformers at import time; the checks and resources import them when they run.
"""

import os
import warnings

import dagster as dg

from tdm_dagster.assets import batch_assets, training_dataset
from tdm_dagster.assets.collect import mined_sources
from tdm_dagster.assets.queue import queue_recheck
from tdm_dagster.assets.shards import gated_shards
from tdm_dagster.assets.stats import data_stats
from tdm_dagster.assets.train import (
    checkpoint,
    checkpoint_evaluation,
    deployed_model,
)
from tdm_dagster.checks import quality_suites
from tdm_dagster.config.settings import TdmConfig, load_config
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
from tdm_dagster.runs.boxes import location_executor
from tdm_dagster.runs.console import routine_console_logger
from tdm_dagster.runs.launch import LOCATION_JOBS, LocationJobs
from tdm_dagster.schedules import build_schedules
from tdm_dagster.sensors import (
    check_failure_alert_sensor,
    inbox_sensor,
    queue_low_sensor,
    run_failure_alert_sensor,
    train_ready_sensor,
)


def _api_key(config: TdmConfig):
    """The key is read from its env var at run time (``dg.EnvVar``), never stored."""
    name = config.inference.api_key_env
    return dg.EnvVar(name) if os.environ.get(name) else None


def _ray_resource(config: TdmConfig) -> dg.ResourceDefinition:
    """dagster-ray's resource, which connects when a step that uses it starts, only where the
    gate runs on Ray: importing dagster-ray costs the location's load about 0.3-0.5 s (its
    executor pulls in Dagster's CLI), so with ``gate.engine: in_process`` the key holds an
    empty resource and dagster-ray is never imported."""
    if config.gate.engine != "ray":
        return dg.ResourceDefinition.none_resource(description="gate.engine is in_process: no Ray cluster")
    from dagster_ray import Lifecycle

    from tdm_dagster.resources.ray import TdmRayResource

    return TdmRayResource(address=config.ray.address, lifecycle=Lifecycle(connect=True))


def build_definitions(config: TdmConfig | None = None) -> dg.Definitions:
    """The location's Definitions for ``config`` (default: the one in ``$TDM_HOME``)."""
    config = config or load_config()
    defs = dg.Definitions(
        assets=[
            mined_sources, *batch_assets, queue_recheck, gated_shards, data_stats, training_dataset, checkpoint, checkpoint_evaluation, deployed_model
        ],
        asset_checks=[quality_suites],
        jobs=[
            batch_pipeline, generate_and_queue, ingest_inbox, training_pipeline, deploy_best, train_evaluate_deploy,
            deduplicate_dataset, export_dataset,
        ],
        executor=location_executor(),  # TDM_EXECUTOR=celery: each asset step on its box's queue
        loggers={"console": routine_console_logger},  # routine failures without a stack trace
        sensors=[queue_low_sensor, inbox_sensor, train_ready_sensor, check_failure_alert_sensor, run_failure_alert_sensor],
        schedules=build_schedules(config.schedules),
        resources={
            "tdm": TdmHomeResource(),
            "inference": InferenceServerResource(
                base_url=config.inference_base_url,
                api_key=_api_key(config),
                model=config.inference.model,
                timeout_sec=config.inference.timeout_sec,
                max_concurrency=config.inference.max_concurrency,
                max_attempts=config.inference.max_attempts,
            ),
            "ray": _ray_resource(config),
            "trainer": TrainerResource(device=os.environ.get("TDM_TRAINER_DEVICE")),
            "skill_api": SkillApiResource(
                syllo_url=config.skill_api.syllo_url,
                binary_url=config.skill_api.binary_url,
                timeout_sec=config.skill_api.timeout_sec,
            ),
            LOCATION_JOBS: LocationJobs(lambda: defs),  # for the ops that run another job
        },
    )
    _bind_resources_quietly(defs)
    return defs


def _bind_resources_quietly(defs: dg.Definitions) -> None:
    """Bind the resources to the jobs and sensors now (Dagster caches the result, so the CLI
    and ``dagster`` itself reuse it), without Dagster 1.13's spurious BetaWarning: binding
    copies each sensor with ``owners=[]`` (``SensorDefinition.with_attributes``), which trips
    the beta check of ``owners`` although no sensor here sets it. Every other warning shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning)
        defs.get_repository_def()
