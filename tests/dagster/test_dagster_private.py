"""Pins the behaviour tdm relies on from private Dagster APIs (``tdm_dagster/runs/dagster_private.py``)
and from the public stand-ins that replaced others: a Dagster upgrade that changes one
fails here, by name."""

import logging
from pathlib import Path

import dagster as dg
import pytest

import tdm_dagster
from tdm_dagster.runs.console import routine_console_logger
from tdm_dagster.runs.dagster_private import (
    console_logger,
    failed_check_executions,
    latest_check_execution_id,
)
from tdm_dagster.runs.instance import IN_PROGRESS_STATUSES, MAYBE_ORPHANED_STATUSES
from tests.support.dagster_private import IN_PROGRESS_RUN_STATUSES

def test_only_dagster_private_names_private_dagster():
    package = Path(tdm_dagster.__file__).parent
    naming = {path.relative_to(package).as_posix() for path in package.rglob("*.py") if "dagster._" in path.read_text()}
    assert naming == {"runs/dagster_private.py"}


def test_in_progress_statuses_are_dagsters_and_orphans_add_not_started():
    assert set(IN_PROGRESS_STATUSES) == set(IN_PROGRESS_RUN_STATUSES)
    assert dg.DagsterRunStatus.QUEUED not in IN_PROGRESS_STATUSES  # waiting in the daemon's queue: not in flight
    assert set(MAYBE_ORPHANED_STATUSES) == {dg.DagsterRunStatus.NOT_STARTED, *IN_PROGRESS_RUN_STATUSES}


@dg.asset(
    check_specs=[dg.AssetCheckSpec("always_fails", asset="pinned"), dg.AssetCheckSpec("always_passes", asset="pinned")],
)
def pinned():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="always_fails", passed=False, metadata={"observed": 0})
    yield dg.AssetCheckResult(check_name="always_passes", passed=True)


FAILS = dg.AssetCheckKey(dg.AssetKey("pinned"), "always_fails")
PASSES = dg.AssetCheckKey(dg.AssetKey("pinned"), "always_passes")


def test_failed_check_executions_appear_once_with_increasing_ids():
    with dg.instance_for_test() as instance:
        assert latest_check_execution_id(instance, [FAILS, PASSES]) == 0
        assert failed_check_executions(instance, [FAILS, PASSES], limit=10) == []
        runs = [dg.materialize([pinned], instance=instance).run_id for _ in range(3)]

        failed = failed_check_executions(instance, [FAILS, PASSES], limit=10)
        assert [record.run_id for record in failed] == runs  # one per run, oldest first
        ids = [record.id for record in failed]
        assert ids == sorted(set(ids))  # increasing, never repeated
        for record in failed:
            evaluation = record.event.dagster_event.event_specific_data
            assert (evaluation.check_name, evaluation.passed, evaluation.asset_key) == ("always_fails", False, dg.AssetKey("pinned"))
            assert evaluation.metadata["observed"].value == 0
        assert [record.run_id for record in failed_check_executions(instance, [FAILS], limit=2)] == runs[1:]
        assert failed_check_executions(instance, [PASSES], limit=10) == []

        latest = latest_check_execution_id(instance, [FAILS, PASSES])
        assert latest >= ids[-1] and latest > ids[-2]
        dg.materialize([pinned], instance=instance)
        assert latest_check_execution_id(instance, [FAILS, PASSES]) > latest  # a global cursor


def test_console_logger_prints_dagsters_format(capsys):
    console = console_logger("tdm-pinned", logging.INFO)
    assert isinstance(console, logging.Logger) and console.level == logging.INFO
    console.info("shown")
    console.debug("hidden")
    err = capsys.readouterr().err
    assert " - tdm-pinned - INFO - shown" in err and "hidden" not in err


@pytest.mark.parametrize(("configured", "level"), [("INFO", logging.INFO), ("debug", logging.DEBUG), ("warn", logging.WARNING)])
def test_routine_console_logger_takes_the_configured_level(configured, level):
    console = routine_console_logger(dg.build_init_logger_context(logger_config={"name": "tdm", "log_level": configured}))
    assert console.level == level

