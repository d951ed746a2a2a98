"""Which box runs which step when tdm runs on more than one machine.

Each box is a Celery queue that ``dagster-celery`` workers on that machine serve: the
inference box (the 3090: generation and serving) serves ``inference``, the training box
(the 4090: training and evaluation) serves ``training``. An asset that needs a box says
so with :func:`on_box` in its ``op_tags``; every other step goes to dagster-celery's
default queue (``dagster``), served by whichever box holds the work (docs/guides/past-one-box.md:
"Running past one box").

The code location runs each step of its asset jobs on its box's queue when the process
that runs the run has ``TDM_EXECUTOR=celery``, ``CELERY_BROKER_URL`` and
``CELERY_RESULT_BACKEND`` (Celery reads both from the environment itself, so a broker
password never lands in a file or the run config); otherwise, or with ``TDM_EXECUTOR=multiprocess``, every step
runs on this box as before. dagster-celery is imported only when asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from tdm_dagster.config.settings import ConfigError

INFERENCE = "inference"
"""The inference box (the 3090): generation, and deploying to the server it runs."""
TRAINING = "training"
"""The training box (the 4090): training and evaluating checkpoints."""
DEFAULT_QUEUE = "dagster"
"""dagster-celery's queue for every step with no box: the gate, the queue, datasets, stats."""
QUEUE_TAG = "dagster-celery/queue"
"""The op tag dagster-celery routes a step by (``dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG``,
named here so the location loads without dagster-celery installed)."""
EXECUTOR_ENV = "TDM_EXECUTOR"
CELERY_ENV = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
"""What the process that runs a run, and every worker, needs with ``TDM_EXECUTOR=celery``:
the broker the workers serve and where they put step results (e.g. the same Redis)."""
EXECUTORS = ("multiprocess", "celery")


def on_box(box: str) -> dict[str, str]:
    """The op tags of a step that must run on ``box`` (:data:`INFERENCE` or :data:`TRAINING`)."""
    if box not in (INFERENCE, TRAINING):
        raise ValueError(f"unknown box {box!r}; boxes: {INFERENCE}, {TRAINING}")
    return {QUEUE_TAG: box}


def box_of(op_tags: Mapping[str, str]) -> str:
    """The queue a step with ``op_tags`` goes to."""
    return op_tags.get(QUEUE_TAG, DEFAULT_QUEUE)


class ExecutorSettingError(ConfigError):
    """``TDM_EXECUTOR`` names no executor, or the one it names cannot run here: the
    location does not load, and ``tdm`` says why (a config error)."""


def location_executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor of the location's jobs that have none of their own: dagster-celery's
    when ``TDM_EXECUTOR=celery``, else ``None`` (Dagster's multiprocess default)."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(EXECUTOR_ENV, "").strip() or "multiprocess"
    if chosen not in EXECUTORS:
        raise ExecutorSettingError(f"env {EXECUTOR_ENV} is {chosen!r}; expected one of {', '.join(EXECUTORS)}")
    if chosen == "multiprocess":
        return None
    missing = [name for name in CELERY_ENV if not environ.get(name)]
    if missing:
        raise ExecutorSettingError(f"env {EXECUTOR_ENV}=celery needs {' and '.join(missing)} (the broker the workers serve, e.g. redis://host:6379/0)")
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise ExecutorSettingError(f"env {EXECUTOR_ENV}=celery needs dagster-celery: pip install -e '.[celery]'") from None
    return celery_executor
