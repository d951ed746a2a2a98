"""What ``/v1/scheduler`` does, over Dagster's own instance and the location's schedules
and sensors (no scheduler of tdm's own):

- :func:`scheduler_status`: each schedule and sensor of the location, with its state in
  the instance (running or stopped), its cron, its last tick and (running schedules) its
  next one, and the latest runs of its job;
- :func:`set_instigator_running`: start or stop a schedule or sensor, with Dagster's own
  ``dagster schedule|sensor start|stop`` over the location as ``workspace.yaml`` names it
  (``tdm_dagster``), so the daemon sees the same state. It takes effect at the daemon's
  next evaluation (about 30 s for schedules);
- :func:`set_cron`: a schedule's cron lives in config (``schedules.<job>``; Dagster's cron
  is defined in code, and tdm's code reads it from there): it is written to
  ``config.yaml`` atomically, and takes effect when the code location is (re)loaded (the
  UI's "Reload", or restarting ``dagster dev``/the daemon);
- :func:`launch_job`: run a job now, as ``tdm`` runs one, in its own detached process
  (``python -m tdm_dagster.runs.run_now``) on the same instance, under a run id chosen
  here and returned at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from tdm_dagster.files.atomic import atomic_write_text
from tdm_dagster.home import TdmHome
from tdm_dagster.runs.dagster_private import next_cron_tick, valid_cron

LOCATION_NAME = "tdm_dagster"
"""The code location's name in ``workspace.yaml``: instigator state is kept per location."""
RUNS_SHOWN = 5


class SchedulerError(ValueError):
    """A request the scheduler cannot honour; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _states(instance: dg.DagsterInstance) -> dict[str, Any]:
    """The instance's instigator state by name, for this location's instigators only."""
    return {
        state.instigator_name: state
        for state in instance.all_instigator_state()
        if state.origin.repository_origin.code_location_origin.location_name == LOCATION_NAME
    }


def _last_tick(instance: dg.DagsterInstance, state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
    if not ticks:
        return None
    tick = ticks[0]
    return {"timestamp": tick.timestamp, "status": tick.status.value, "skip_reason": tick.skip_reason, "run_ids": list(tick.run_ids)}


def _runs(instance: dg.DagsterInstance, job_name: str | None) -> list[dict[str, Any]]:
    if not job_name:
        return []
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=RUNS_SHOWN)
    return [
        {"run_id": record.dagster_run.run_id, "status": record.dagster_run.status.value, "created": record.create_timestamp.timestamp()}
        for record in records
    ]


def scheduler_status(instance: dg.DagsterInstance, defs: dg.Definitions, now: float | None = None) -> dict[str, Any]:
    """The schedules and sensors of ``defs`` with their state in ``instance``."""
    now = time.time() if now is None else now
    repository = defs.get_repository_def()
    states = _states(instance)
    schedules = []
    for schedule in sorted(repository.schedule_defs, key=lambda s: s.name):
        state = states.get(schedule.name)
        running = state is not None and state.is_running
        timezone = schedule.execution_timezone or "UTC"
        schedules.append({
            "name": schedule.name,
            "job": schedule.job_name,
            "running": running,
            "cron": schedule.cron_schedule,
            "timezone": timezone,
            "last_tick": _last_tick(instance, state),
            "next_tick": next_cron_tick(str(schedule.cron_schedule), timezone, now) if running else None,
            "recent_runs": _runs(instance, schedule.job_name),
        })
    sensors = []
    for sensor in sorted(repository.sensor_defs, key=lambda s: s.name):
        state = states.get(sensor.name)
        sensors.append({
            "name": sensor.name,
            "job": sensor.job_name if sensor.has_jobs and len(sensor.targets) == 1 else None,
            "running": state is not None and state.is_running,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "last_tick": _last_tick(instance, state),
        })
    jobs = sorted(name for name in repository.job_names if not name.startswith("__"))
    return {"schedules": schedules, "sensors": sensors, "jobs": jobs}


def _workspace_file(folder: Path) -> Path:
    path = folder / "workspace.yaml"
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": {"module_name": "tdm_dagster.definitions", "location_name": LOCATION_NAME}}]}))
    return path


def set_instigator_running(kind: str, name: str, running: bool, env: dict[str, str], timeout_s: float = 300) -> None:
    """``dagster {kind} start|stop NAME`` over the location; raises ``SchedulerError`` with
    Dagster's own message when it refuses."""
    with tempfile.TemporaryDirectory(prefix="tdm-scheduler-") as folder:
        command = [sys.executable, "-m", "dagster", kind, "start" if running else "stop", name, "-w", str(_workspace_file(Path(folder)))]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=folder)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise SchedulerError(f"dagster {kind} {'start' if running else 'stop'} {name} failed: {lines[-1] if lines else done.returncode}", 500)


def set_cron(home: TdmHome, job: str, cron: str) -> None:
    """Write ``schedules.<job>: cron`` into ``home``'s config.yaml, keeping the rest."""
    if not valid_cron(cron):
        raise SchedulerError(f"cron {cron[:80]!r} is not a valid cron string (five fields, e.g. '*/30 * * * *')")
    path = home.config_path
    document = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    if not isinstance(document, dict):
        raise SchedulerError(f"{path}: not a mapping, not rewritten", 500)
    section = document.get("schedules") or {}
    document["schedules"] = {**section, job: cron}
    atomic_write_text(path, yaml.safe_dump(document, sort_keys=False))


def launch_job(job: str, env: dict[str, str], log_folder: Path) -> str:
    """Start ``job`` in its own detached process on the instance of ``env``'s
    ``DAGSTER_HOME``; the run id it will have, at once."""
    run_id = str(uuid.uuid4())
    log_folder.mkdir(parents=True, exist_ok=True)
    with open(log_folder / f"{run_id}.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "tdm_dagster.runs.run_now", job, run_id],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )
    return run_id


def dagster_env() -> dict[str, str]:
    """This process's environment, for the Dagster processes it starts; ``SchedulerError``
    (503) without ``DAGSTER_HOME``: without it there is no instance to schedule on."""
    if not os.environ.get("DAGSTER_HOME"):
        raise SchedulerError("DAGSTER_HOME is not set for `tdm api`: there is no Dagster instance to schedule on", 503)
    return dict(os.environ)
