"""The 12-hourly quality re-check and the stats for the UI's plots, as real Dagster runs."""

import json

import dagster as dg

from tdm_dagster.assets.queue import QUEUE_CHECK
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.gate.reports import load_report
from tdm_dagster.queue.store import TrainingQueue


def evaluations(result: dg.ExecuteInProcessResult) -> dict:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}  # fmt: skip


def test_recheck_holds_a_failing_file_and_its_check_fails(home):
    from tdm_dagster.definitions import defs

    queue = TrainingQueue(home)
    queue.enqueue("good", get_generator("binary").generate(level=3, count=40, seed=1), "normal")
    same = {"messages": [{"role": "user", "content": "Say something."}, {"role": "assistant", "content": "Same answer every time."}]}
    queue.enqueue("copied_in_by_hand", [same] * 40, "high")
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("recheck_quality").execute_in_process(instance=instance)
        assert result.success  # a failing check warns and alerts; it does not fail the run
        check = evaluations(result)[QUEUE_CHECK]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert check.metadata["observed.held"].value == 1 and check.metadata["observed.passed"].value == 1
        assert "copied_in_by_hand" in check.metadata["verdicts"].value and "diversity" in check.metadata["verdicts"].value
        assert [f.batch_id for f in queue.files()] == ["good"]
        assert (home.root / "held" / "high" / "copied_in_by_hand.jsonl").exists()

        again = defs.resolve_job_def("recheck_quality").execute_in_process(instance=instance)
        assert evaluations(again)[QUEUE_CHECK].passed  # the held file is out of the queue now


def test_stats_are_recorded_as_plottable_metadata_on_each_refresh(home):
    from tdm_dagster.definitions import defs

    with dg.instance_for_test() as instance:
        refresh = defs.resolve_job_def("refresh_stats")
        assert refresh.execute_in_process(instance=instance).success
        batch = defs.resolve_job_def("generate_and_queue").execute_in_process(
            instance=instance, run_config={"ops": {"run_one_batch": {"config": {"count": 30}}}}
        )
        assert batch.success
        assert refresh.execute_in_process(instance=instance).success
        events = instance.fetch_materializations(dg.AssetKey("data_stats"), limit=10).records
        before, after = sorted((e.asset_materialization.metadata for e in events), key=lambda m: m["generated"].value)
    [batch_id] = [path.stem for path in home.reports_dir.glob("*.json")]
    records = load_report(home, batch_id)["records"]
    assert before["generated"].value == 0 and before["queue_files"].value == 0
    assert after["generated"].value == records["generated"] == 30
    assert after["approved"].value == records["approved"] and after["queue_files"].value == 1
    assert after["source.builtin.approved"].value == records["approved"]
    assert after["total_tokens"].value > 0 and after["storage_mb"].value > 0
    assert 0 < after["source.builtin.health"].value <= 1
    assert all(isinstance(value, (dg.IntMetadataValue, dg.FloatMetadataValue)) for value in after.values()), json.dumps(
        {k: type(v).__name__ for k, v in after.items()}
    )


def test_a_held_file_is_posted_to_slack(home, monkeypatch):
    from tdm_dagster.definitions import defs
    from tdm_dagster.sensors import check_failure_alert_sensor
    from tests.support.http_servers import running_server
    from tests.support.slack_server import slack_app

    same = {"messages": [{"role": "user", "content": "Say something."}, {"role": "assistant", "content": "Same answer every time."}]}
    TrainingQueue(home).enqueue("copied_in_by_hand", [same] * 40, "normal")
    received: list = []
    with running_server(slack_app(received)) as url, dg.instance_for_test() as instance:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-recheck-secret")
        monkeypatch.setenv("TDM_SLACK_CHANNEL", "#training-data")
        monkeypatch.setenv("TDM_SLACK_API_URL", f"{url}/api/")
        context = dg.build_sensor_context(instance=instance)
        check_failure_alert_sensor(context)  # alerts start now
        result = defs.resolve_job_def("recheck_quality").execute_in_process(instance=instance)
        check_failure_alert_sensor(context)
    [message] = received
    blocks = json.dumps(message["body"]["blocks"])
    assert message["body"]["blocks"][0]["text"]["text"] == f"Check failed: queue_recheck · {QUEUE_CHECK}"
    assert "observed.held" in blocks and result.run_id in blocks
    assert "xoxb-recheck-secret" not in message["raw"]
