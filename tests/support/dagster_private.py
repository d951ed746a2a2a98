"""Every private Dagster API the tests use, in one place (the code's own are in
``tdm_dagster/runs/dagster_private.py``).

The tests need a few things Dagster keeps private: making runs in a given status without
launching them, and reading a daemon's sensor ticks and the stored check executions. A
Dagster upgrade that moves one breaks this import, by name, rather than each test file.
"""

from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.test_utils import create_run_for_test
from dagster._serdes import serialize_value

__all__ = [
    "IN_PROGRESS_RUN_STATUSES",
    "AssetCheckExecutionRecordStatus",
    "InstigatorType",
    "TickStatus",
    "create_run_for_test",
    "serialize_value",
]
