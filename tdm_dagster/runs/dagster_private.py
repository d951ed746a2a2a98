"""Every private Dagster API tdm uses, in one place, each because no public one does the job.

A Dagster upgrade may change these without notice, so each is wrapped here and pinned by
``tests/dagster/test_dagster_private.py``: an upgrade that breaks one fails there, by name,
instead of somewhere in a sensor or a job's console output. Nothing else in
``tdm_dagster`` imports ``dagster._*``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)
from dagster._utils.log import create_console_logger

# --- Asset-check execution history (sensors/alerts.py) ---------------------------------
# The public ``instance.get_event_records`` has no global cursor in the default SQLite
# storage (its ids are per run shard); the check-execution index does.


def failed_check_executions(instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey], limit: int) -> list:
    """The latest ``limit`` failed executions of each check in ``keys``, oldest first.

    Each record has ``id`` (global and increasing, so a safe cursor), ``run_id`` and
    ``event`` (its ``dagster_event.event_specific_data`` is the ``AssetCheckEvaluation``)."""
    storage = instance.event_log_storage
    failed = {AssetCheckExecutionRecordStatus.FAILED}
    records = [record for key in keys for record in storage.get_asset_check_execution_history(key, limit=limit, status=failed)]
    return sorted(records, key=lambda record: record.id)


def latest_check_execution_id(instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey]) -> int:
    """The id of the newest execution, in any state, of the checks in ``keys``; 0 if none."""
    storage = instance.event_log_storage
    return max((record.id for key in keys for record in storage.get_asset_check_execution_history(key, limit=1)), default=0)


# --- Console logger (runs/console.py) ---------------------------------------------------
# ``dg.colored_console_logger`` is public but returns a LoggerDefinition; the logger it
# builds (Dagster's format and colours) comes only from this helper.


def console_logger(name: str, level: int) -> logging.Logger:
    """A new logger that prints to the console exactly as Dagster's colored console logger."""
    return create_console_logger(name=name, level=level)


# --- Cron strings (runs/scheduler.py) ----------------------------------------------------
# Dagster validates and iterates a schedule's cron with these; no public function does.


def valid_cron(cron: str) -> bool:
    """Whether Dagster accepts ``cron`` as a schedule's cron string."""
    from dagster._utils.schedules import is_valid_cron_string

    return is_valid_cron_string(cron)


def next_cron_tick(cron: str, timezone: str, after: float) -> float:
    """The timestamp of ``cron``'s first tick (in ``timezone``) after ``after``."""
    from dagster._utils.schedules import cron_string_iterator

    return next(cron_string_iterator(after, cron, timezone)).timestamp()
