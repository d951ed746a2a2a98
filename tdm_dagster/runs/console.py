"""The console logger of every tdm job: Dagster's, except that routine outcomes read as
routine.

A rejected batch (its blocking checks fail), a batch not queued, or a generation that
fails for a named reason (``GenerationError``) are expected results, not bugs: on the
console they get one line with the reason instead of a Python stack trace. The run's
event log, which the UI shows, keeps the full error with its trace; unexpected errors
print their trace on the console as before.
"""

from __future__ import annotations

import logging
import re

import dagster as dg

from tdm_dagster.runs.dagster_private import console_logger

ROUTINE_ERRORS = frozenset({"DagsterAssetCheckFailedError", "Failure", "GenerationError"})
"""Class names of the errors that are outcomes (see the module docstring)."""


def routine_error(error) -> str | None:
    """The message of the routine error in ``error`` (a ``SerializableErrorInfo``) or its
    causes, without the class name; None if it holds none."""
    while error is not None:
        if error.cls_name in ROUTINE_ERRORS:
            return re.sub(rf"^[\w.]*{error.cls_name}: ", "", error.message.strip())
        error = error.cause
    return None


class RoutineFailureFilter(logging.Filter):
    """Shortens the console line of a failure event caused by a routine error."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        reason = routine_error(error) if error is not None else None
        if reason is not None:
            head = str(record.msg).split("\n\n", 1)[0].rstrip(".")
            record.msg = f"{head}: {' '.join(reason.split())}"
            record.args = ()
        return True


@dg.logger(dg.colored_console_logger.config_schema, description="Dagster's colored console logger; routine failures on one line, without a stack trace.")
def routine_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    console = console_logger(config["name"], logging.getLevelName(config["log_level"].upper()))
    console.addFilter(RoutineFailureFilter())
    return console
