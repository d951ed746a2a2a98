"""``/v1/scheduler``: the schedules and sensors of Dagster's own instance, over HTTP.

- ``GET /v1/scheduler/status`` (scope ``read``): each schedule and sensor, running or
  stopped, its cron or interval, last and next tick, the latest runs of its job;
- ``POST /v1/scheduler/run`` (scope ``operate``): run a job now (202 with its run id; 404
  naming the jobs for an unknown one; 503 with the figures when the box lacks the memory
  the job is estimated to need: :mod:`tdm_dagster.runs.job_memory`);
- ``PUT /v1/scheduler/job`` (scope ``operate``): start or stop a schedule or sensor, or
  change a schedule's cron (see :mod:`tdm_dagster.runs.scheduler` for when each takes
  effect).

``operate`` is a scope of its own: a key that runs and switches jobs without writing or
deleting data, and that a read key lacks. These routes need ``DAGSTER_HOME`` set for
``tdm api`` (the instance the UI and the daemon use); without it they answer 503.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from tdm_dagster.api.auth import require

read_router = APIRouter(prefix="/v1/scheduler", tags=["scheduler"], dependencies=[Depends(require("read"))])
operate_router = APIRouter(prefix="/v1/scheduler", tags=["scheduler"], dependencies=[Depends(require("operate"))])

NAME = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_]+$")


class RunRequest(BaseModel):
    job: str = NAME


class JobChange(BaseModel):
    name: str = NAME
    """A schedule (``refresh_stats_schedule``), its job (``refresh_stats``) or a sensor."""
    enabled: bool | None = None
    cron: str | None = Field(None, min_length=1, max_length=100)


def _current(request: Request) -> tuple[Any, Any]:
    """The location's definitions, built from the config as it is now, and that config
    (503 without ``DAGSTER_HOME`` or with a config that does not load)."""
    from tdm_dagster.config.settings import ConfigError, load_config
    from tdm_dagster.location import build_definitions
    from tdm_dagster.runs.scheduler import SchedulerError, dagster_env

    try:
        dagster_env()
        config = load_config(request.app.state.home)
    except SchedulerError as error:
        raise HTTPException(error.status, str(error)) from None
    except ConfigError as error:
        raise HTTPException(503, f"config problem: {error}") from None
    return build_definitions(config), config


@read_router.get("/status")
def status(request: Request) -> dict[str, Any]:
    """Schedules and sensors with their state, cron or interval, last/next tick and runs."""
    from tdm_dagster.runs.instance import open_instance
    from tdm_dagster.runs.scheduler import scheduler_status

    defs, _ = _current(request)
    with open_instance() as instance:
        return scheduler_status(instance, defs)


@operate_router.post("/run", status_code=202)
def run_now(request: Request, body: RunRequest) -> dict[str, Any]:
    """Run ``job`` now in its own process on the instance; its run id at once (follow it
    in ``/v1/scheduler/status`` or the UI)."""
    from tdm_dagster.runs import job_memory
    from tdm_dagster.runs.scheduler import dagster_env, launch_job

    defs, config = _current(request)
    jobs = sorted(name for name in defs.get_repository_def().job_names if not name.startswith("__"))
    if body.job not in jobs:
        raise HTTPException(404, f"no job {body.job!r}: the jobs are {', '.join(jobs)}")
    home = request.app.state.home
    model = Path(config.training.model_path) if config.training.model_path else None
    needed = job_memory.estimate_bytes(body.job, gate_inputs=[home.queue_root, home.inbox_dir], training_data=[home.queue_root], model_folder=model)
    verdict = job_memory.check(needed, config.api.job_memory_reserve_mb)
    if not verdict.fits:
        raise HTTPException(503, verdict.reason(body.job), {"Retry-After": "60"})
    run_id = launch_job(body.job, dagster_env(), home.api_dir / "runs")
    return {"run_id": run_id, "job": body.job, "estimated_memory_mib": needed // job_memory.MIB}


@operate_router.put("/job")
def change(request: Request, body: JobChange) -> dict[str, Any]:
    """Start/stop a schedule or sensor (``enabled``) and/or set a schedule's ``cron``."""
    from tdm_dagster.runs.scheduler import SchedulerError, dagster_env, set_cron, set_instigator_running

    if body.enabled is None and body.cron is None:
        raise HTTPException(400, "nothing to change: give enabled (true/false) and/or cron")
    defs, _ = _current(request)
    repository = defs.get_repository_def()
    schedules = {schedule.name: schedule for schedule in repository.schedule_defs}
    sensors = {sensor.name for sensor in repository.sensor_defs}
    name = f"{body.name}_schedule" if f"{body.name}_schedule" in schedules else body.name
    if name not in schedules and name not in sensors:
        raise HTTPException(404, f"no schedule or sensor {body.name!r}: they are {', '.join(sorted([*schedules, *sensors]))}")
    if body.cron is not None and name not in schedules:
        raise HTTPException(400, f"{name} is a sensor: it has no cron")
    changed: dict[str, Any] = {"name": name}
    try:
        if body.cron is not None:
            set_cron(request.app.state.home, schedules[name].job_name, body.cron)
            changed.update(cron=body.cron, cron_takes_effect="when the code location is reloaded (UI Reload, or restarting dagster dev / the daemon)")
        if body.enabled is not None:
            set_instigator_running("schedule" if name in schedules else "sensor", name, body.enabled, dagster_env())
            changed.update(running=body.enabled, running_takes_effect="at the daemon's next evaluation")
    except SchedulerError as error:
        raise HTTPException(error.status, str(error)) from None
    return changed
