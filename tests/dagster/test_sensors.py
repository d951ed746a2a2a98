"""The queue-low sensor, evaluated for real against a Dagster instance."""

import json
import time

import dagster as dg
import pytest

from tdm_dagster.config.sections import AutoGenerateConfig
from tdm_dagster.generate.planning import decide_trigger, record_generation_start
from tdm_dagster.home import TdmHome
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.queue.store import TrainingQueue
from tdm_dagster.resources import TdmHomeResource
from tdm_dagster.sensors import inbox_sensor, queue_low_sensor, train_ready_sensor
from tests.support.dagster_private import create_run_for_test


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def sensor_context(instance, cursor=None, root=""):
    """A tick's context with the ``tdm`` resource (``root`` empty: $TDM_HOME)."""
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={"tdm": TdmHomeResource(root=root)})


def evaluate(instance, cursor=None):
    context = sensor_context(instance, cursor)
    return queue_low_sensor(context), context


def fill_queue(home, files):
    for n in range(files):
        TrainingQueue(home).enqueue(f"batch{n}", [{"n": n}], "normal")


def test_requests_a_batch_when_queue_at_threshold(home, instance):
    home.config_path.write_text("auto_generate:\n  threshold: 2\n  count: 30\n")
    fill_queue(home, 2)
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.partition_key.startswith("syllo_autogen_") and request.partition_key.endswith("_count30")
    assert request.run_key == request.partition_key  # stable: a re-evaluated tick cannot start it twice
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == batch_partitions.name and list(add.partition_keys) == [request.partition_key]
    assert json.loads(result.cursor)["last_batch_id"] == request.partition_key


def test_skips_above_threshold(home, instance):
    home.config_path.write_text("auto_generate:\n  threshold: 1\n")
    fill_queue(home, 2)
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SkipReason)
    assert "queue depth 2 is above threshold 1" in result.skip_message


def test_cooldown_from_cursor_and_from_last_generation(home, instance):
    home.config_path.write_text("auto_generate:\n  cooldown_sec: 600\n")
    result, _ = evaluate(instance, cursor=json.dumps({"last_request_at": time.time() - 60}))
    assert isinstance(result, dg.SkipReason) and "cooldown" in result.skip_message
    record_generation_start(home, "earlier", time.time() - 30)  # e.g. a cron run
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SkipReason) and "cooldown" in result.skip_message
    record_generation_start(home, "earlier", time.time() - 601)
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SensorResult)


def test_never_a_second_generation_while_one_is_in_flight(home, instance):
    running = create_run_for_test(instance, job_name="batch_pipeline", status=dg.DagsterRunStatus.STARTED)
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SkipReason) and "in flight" in result.skip_message
    instance.report_run_failed(running)
    create_run_for_test(instance, job_name="some_other_job", status=dg.DagsterRunStatus.STARTED)
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SensorResult)


def test_disabled_skips(home, instance):
    home.config_path.write_text("auto_generate:\n  enabled: false\n")
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SkipReason) and "enabled is false" in result.skip_message


@pytest.mark.parametrize(
    "text",
    ["auto_generate:\n  priority: urgent\n", "auto_generate: [", "\x00\x01garbage", "auto_generate:\n  skill: chess\n"],
)
def test_bad_config_never_crashes_the_sensor(home, instance, text):
    home.config_path.write_text(text)
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SkipReason)
    assert "cannot plan a batch" in result.skip_message


def test_corrupt_curriculum_skips_with_reason(home, instance):
    (home.state_dir / "curriculum.json").write_text("{not json")
    result, _ = evaluate(instance)
    assert isinstance(result, dg.SkipReason) and "curriculum" in result.skip_message


def test_decide_trigger_rules():
    settings = AutoGenerateConfig(threshold=1, cooldown_sec=100)
    assert decide_trigger(settings, 1, None, 1000.0).generate
    assert not decide_trigger(settings, 2, None, 1000.0).generate
    waiting = decide_trigger(settings, 0, 950.0, 1000.0)
    assert not waiting.generate and waiting.cooldown_left_sec == pytest.approx(50.0)
    assert decide_trigger(settings, 0, 900.0, 1000.0).generate
    assert not decide_trigger(settings, 0, None, 1000.0, in_flight=1).generate


def test_inbox_batches_in_flight_do_not_block_generation(home, instance):
    create_run_for_test(instance, job_name="batch_pipeline", status=dg.DagsterRunStatus.STARTED, tags={"tdm/trigger": "inbox_sensor"})
    assert isinstance(evaluate(instance)[0], dg.SensorResult)
    create_run_for_test(instance, job_name="generate_and_queue", status=dg.DagsterRunStatus.STARTED)
    assert isinstance(evaluate(instance)[0], dg.SkipReason)


def test_train_ready_sensor_waits_for_enough_examples(home, instance):
    home.config_path.write_text("training:\n  min_examples: 3\n")
    TrainingQueue(home).enqueue("a", [{"n": 1}, {"n": 2}], "normal")
    skipped = train_ready_sensor(sensor_context(instance))
    assert isinstance(skipped, dg.SkipReason) and "2 example(s) queued; training starts at 3" in skipped.skip_message
    TrainingQueue(home).enqueue("b", [{"n": 3}], "low")
    result = train_ready_sensor(sensor_context(instance))
    [request] = result.run_requests
    assert request.run_key == "train-1" and request.tags["tdm/queued_examples"] == "3"
    create_run_for_test(instance, job_name="train_evaluate_deploy", status=dg.DagsterRunStatus.STARTED)
    busy = train_ready_sensor(sensor_context(instance, result.cursor))
    assert isinstance(busy, dg.SkipReason) and "in flight" in busy.skip_message


def test_runs_whose_process_is_gone_block_neither_sensor(home, instance):
    import subprocess
    import sys

    from tdm_dagster.runs.owner import PID_TAG, PROCESS_START_TAG, owner_tags

    with subprocess.Popen([sys.executable, "-c", "pass"]) as exited:
        pass
    dead = {**owner_tags(), PID_TAG: str(exited.pid), PROCESS_START_TAG: ""}
    runs = [create_run_for_test(instance, job_name=job, status=dg.DagsterRunStatus.STARTED, tags=dead)
            for job in ("generate_and_queue", "batch_pipeline", "train_evaluate_deploy")]  # fmt: skip
    TrainingQueue(home).enqueue("a", [{"n": 1}], "normal")
    home.config_path.write_text("auto_generate:\n  threshold: 1\ntraining:\n  min_examples: 1\n")
    assert isinstance(evaluate(instance)[0], dg.SensorResult)
    assert isinstance(train_ready_sensor(sensor_context(instance)), dg.SensorResult)
    assert [instance.get_run_by_id(run.run_id).status for run in runs] == [dg.DagsterRunStatus.FAILURE] * 3


def test_sensors_use_the_configured_home_resource_not_tdm_home(home, tmp_path, instance):
    """A ``TdmHomeResource(root=...)`` elsewhere than $TDM_HOME is the home every sensor reads."""
    other = TdmHome(tmp_path / "configured-home").ensure()
    other.config_path.write_text("auto_generate:\n  threshold: 1\n  count: 7\ntraining:\n  min_examples: 1\ninbox:\n  settle_sec: 0\n")
    TrainingQueue(other).enqueue("a", [{"n": 1}], "normal")
    other.inbox_dir.mkdir()
    (other.inbox_dir / "x.jsonl").write_text('{"instruction": "i", "input": "", "output": "o"}\n')
    home.config_path.write_text("auto_generate:\n  threshold: 0\ntraining:\n  min_examples: 5\n")  # $TDM_HOME says no
    TrainingQueue(home).enqueue("b", [{"n": 1}], "normal")

    assert isinstance(queue_low_sensor(sensor_context(instance)), dg.SkipReason)
    assert isinstance(train_ready_sensor(sensor_context(instance)), dg.SkipReason)
    assert isinstance(inbox_sensor(sensor_context(instance)), dg.SkipReason)

    [batch] = queue_low_sensor(sensor_context(instance, root=str(other.root))).run_requests
    assert batch.partition_key.endswith("_count7")
    [training] = train_ready_sensor(sensor_context(instance, root=str(other.root))).run_requests
    assert training.tags["tdm/queued_examples"] == "1"
    assert isinstance(inbox_sensor(sensor_context(instance, root=str(other.root))), dg.RunRequest)
