"""``TDM_EXECUTOR``: which executor the code location's asset jobs get, and the errors a
wrong setting gives when the location loads (the run itself is tests/system/test_boxes.py)."""

import pytest

from tdm_dagster.location import build_definitions
from tdm_dagster.runs.boxes import INFERENCE, TRAINING, ExecutorSettingError, location_executor, on_box

BROKER = {"CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "CELERY_RESULT_BACKEND": "redis://127.0.0.1:1/0"}


def test_one_box_by_default():
    assert location_executor({}) is None
    assert location_executor({"TDM_EXECUTOR": "multiprocess", **BROKER}) is None  # a broker alone changes nothing


def test_celery_when_asked_with_its_broker():
    from dagster_celery import celery_executor

    assert location_executor({"TDM_EXECUTOR": " celery ", **BROKER}) is celery_executor


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"TDM_EXECUTOR": "ray"}, "env TDM_EXECUTOR is 'ray'; expected one of multiprocess, celery"),
        ({"TDM_EXECUTOR": "celery"}, "env TDM_EXECUTOR=celery needs CELERY_BROKER_URL and CELERY_RESULT_BACKEND"),
        ({"TDM_EXECUTOR": "celery", "CELERY_BROKER_URL": "redis://h/0"}, "needs CELERY_RESULT_BACKEND (the broker"),
    ],
)
def test_a_wrong_setting_fails_the_location_load_naming_it(home, monkeypatch, environ, message):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ExecutorSettingError, match=message.replace("(", r"\(")):
        build_definitions()


def test_the_location_runs_asset_jobs_on_celery_and_keeps_in_process_jobs(home, monkeypatch):
    for name, value in {"TDM_EXECUTOR": "celery", **BROKER}.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions()
    assert defs.resolve_job_def("batch_pipeline").executor_def.name == "celery"
    assert defs.resolve_job_def("training_pipeline").executor_def.name == "celery"
    assert defs.resolve_job_def("generate_and_queue").executor_def.name == "in_process"
    monkeypatch.delenv("TDM_EXECUTOR")
    assert build_definitions().resolve_job_def("batch_pipeline").executor_def.name == "multi_or_in_process_executor"


def test_only_the_two_boxes_have_queues():
    assert on_box(INFERENCE) == {"dagster-celery/queue": "inference"} and on_box(TRAINING)["dagster-celery/queue"] == "training"
    with pytest.raises(ValueError, match="unknown box 'gpu'"):
        on_box("gpu")


def test_tdm_names_a_wrong_setting_without_a_stack_trace(home, monkeypatch):
    from click.testing import CliRunner

    from tdm_dagster.cli import main

    monkeypatch.setenv("TDM_EXECUTOR", "celery")
    result = CliRunner().invoke(main, ["generate", "--force", "--count", "5"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output  # a config error
    assert "Error: env TDM_EXECUTOR=celery needs CELERY_BROKER_URL and CELERY_RESULT_BACKEND" in result.output
