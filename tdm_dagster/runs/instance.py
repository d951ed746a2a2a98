"""The Dagster instance tdm runs on: opened safely, and kept free of dead runs.

- :func:`open_instance`: the persistent instance in ``$DAGSTER_HOME`` (else an ephemeral
  one). The first process to open a fresh folder creates its SQLite databases; two doing
  that at once can stamp the schema twice and leave the folder unusable, so the create
  (or check) happens under an exclusive lock on ``$DAGSTER_HOME/.tdm-instance.lock``.
- :func:`fail_dead_runs`: runs still marked in progress whose own process (see
  :mod:`tdm_dagster.runs.owner`) is gone are marked FAILURE, with the reason.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from tdm_dagster.runs.owner import owner_gone

IN_PROGRESS_STATUSES = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
    dg.DagsterRunStatus.SUSPENDED,
)
"""Runs in flight: Dagster's own in-progress statuses (a private constant;
tests/dagster/test_dagster_private.py pins the match), as a public tuple."""

MAYBE_ORPHANED_STATUSES = (dg.DagsterRunStatus.NOT_STARTED, *IN_PROGRESS_STATUSES)
"""What ``fail_dead_runs`` looks at: a process killed between creating a run and
launching it leaves it NOT_STARTED. Not counted as in flight: a NOT_STARTED run that no
tdm process owns (one the daemon created but never launched) would block forever."""

LOCK_NAME = ".tdm-instance.lock"
DEFAULT_INSTANCE_YAML = """\
# Written by `tdm init`.
telemetry:
  enabled: false  # this tool never phones home
# Runs the daemon launches that never start, or hang while being canceled, are marked failed.
# (Runs that `tdm` or `dagster job execute` run in their own process carry their pid;
# tdm marks them failed when that process is gone.)
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 300
"""
logger = logging.getLogger(__name__)


@contextmanager
def instance_lock(dagster_home: Path):
    """Hold the exclusive lock that serializes creating the instance in ``dagster_home``."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    with open(dagster_home / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_instance() -> dg.DagsterInstance:
    """The persistent instance when ``DAGSTER_HOME`` is set (runs show in the UI), created
    or checked under the lock; else an ephemeral one."""
    folder = os.environ.get("DAGSTER_HOME")
    if not folder:
        return dg.DagsterInstance.ephemeral()
    with instance_lock(Path(folder).expanduser()):
        return dg.DagsterInstance.get()


def init_instance(dagster_home: Path) -> bool:
    """Create ``dagster_home`` with tdm's ``dagster.yaml`` (if it has none) and its
    databases, under the lock. True when the ``dagster.yaml`` was written now."""
    config = dagster_home / "dagster.yaml"
    with instance_lock(dagster_home):
        written = not config.exists()
        if written:
            config.write_text(DEFAULT_INSTANCE_YAML)
        dg.DagsterInstance.from_config(str(dagster_home)).dispose()
    return written


def fail_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] | None = None) -> list[str]:
    """Mark FAILURE every in-progress run whose process is gone; their ids. ``log`` (default:
    this module's logger) gets one line per run marked."""
    log = log or logger.warning
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=MAYBE_ORPHANED_STATUSES)):
        why = owner_gone(run.tags)
        if why is None:
            continue
        message = f"run {run.run_id} ({run.job_name}) was {run.status.value} but its {why}: marked failed by tdm"
        instance.report_run_failed(run, message)
        log(message)
        failed.append(run.run_id)
    return failed
