"""Slack alerts for failed checks, end to end against a local Slack-compatible server."""

import json

import dagster as dg
import pytest

from tdm_dagster.assets import batch_assets
from tdm_dagster.checks import quality_suites
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.resources import (
    InferenceServerResource,
    SkillApiResource,
    TdmHomeResource,
)
from tdm_dagster.sensors import check_failure_alert_sensor
from tests.support.fake_inference_server import fake_inference_server
from tests.support.http_servers import running_server
from tests.support.slack_server import slack_app

TOKEN = "xoxb-test-secret-0123456789"


def run_batch(instance, batch_id, inference_url):
    instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    return dg.materialize(
        [*batch_assets, quality_suites], partition_key=batch_id, instance=instance, raise_on_error=False,
        resources={"tdm": TdmHomeResource(), "inference": InferenceServerResource(base_url=inference_url, max_attempts=1), "skill_api": SkillApiResource()},
    )  # fmt: skip


def tick(instance, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    check_failure_alert_sensor(context)
    return context.cursor


@pytest.fixture
def slack(monkeypatch):
    received: list = []
    with running_server(slack_app(received)) as url:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TDM_SLACK_CHANNEL", "#training-data")
        monkeypatch.setenv("TDM_SLACK_API_URL", f"{url}/api/")
        yield received


def test_one_message_per_failed_check_and_none_again(home, slack):
    home.config_path.write_text("auto_generate:\n  source: inference\n")
    with dg.instance_for_test() as instance, fake_inference_server() as (fake, url):
        cursor = tick(instance, None)  # alerts start now
        assert run_batch(instance, "binary_infer_20251122_120000_count20", url).success
        cursor = tick(instance, cursor)
        assert slack == []  # a passing run sends nothing
        fake.reply = lambda messages: "Same answer."
        bad = run_batch(instance, "binary_infer_20251122_130000_count30", url)
        assert not bad.success
        failed = [e.asset_check_evaluation_data for e in bad.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed]  # fmt: skip
        assert {e.partition for e in failed} == {"binary_infer_20251122_130000_count30"}  # checks are per batch
        cursor = tick(instance, cursor)
        assert len(slack) == len(failed) >= 1
        texts = [json.dumps(m["body"]["blocks"]) for m in slack]
        headers = sorted(m["body"]["blocks"][0]["text"]["text"] for m in slack)
        assert headers == sorted(f"Check failed: quality_report · {e.check_name}" for e in failed)
        for text in texts:
            assert "binary_infer_20251122_130000_count30" in text  # the batch, from the evaluation's partition
            assert f"/runs/{bad.run_id}" in text and "ERROR" in text
        assert all(m["authorization"] == f"Bearer {TOKEN}" for m in slack)
        assert all(TOKEN not in m["raw"] for m in slack)
        restarted = tick(instance, cursor)  # a restart resumes from the cursor: nothing resent
        assert len(slack) == len(failed) and restarted == cursor


def test_unconfigured_alerts_skip(home, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with dg.instance_for_test() as instance:
        result = check_failure_alert_sensor(dg.build_sensor_context(instance=instance))
    assert "not configured" in result.skip_message
