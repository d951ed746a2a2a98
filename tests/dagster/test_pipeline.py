"""Real Dagster materializations of generate -> validate -> report -> queue."""

import json

import dagster as dg
import pytest

from tdm_dagster.assets import batch_assets
from tdm_dagster.checks import quality_suites
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.gate.quality import SUITE_NAMES
from tdm_dagster.resources import (
    InferenceServerResource,
    SkillApiResource,
    TdmHomeResource,
)
from tdm_dagster.queue.store import TrainingQueue
from tests.support.fake_inference_server import fake_inference_server
from tests.support.http_servers import refused_port


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def batch_resources(inference_url="http://127.0.0.1:9", skill_urls=None):
    return {
        "tdm": TdmHomeResource(),
        "inference": InferenceServerResource(base_url=inference_url, max_attempts=2, timeout_sec=5),
        "skill_api": SkillApiResource(**(skill_urls or {})),
    }


def materialize_batch(instance, batch_id, *, inference_url="http://127.0.0.1:9", skill_urls=None, run_config=None):
    instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    return dg.materialize(
        [*batch_assets, quality_suites],
        partition_key=batch_id,
        instance=instance,
        resources=batch_resources(inference_url, skill_urls),
        run_config=run_config,
        raise_on_error=False,
    )


def check_events(result):
    return {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def check_evaluations(result):
    return {name: data.passed for name, data in check_events(result).items()}


def test_builtin_batch_is_tested_and_queued(home, instance):
    batch_id = "syllo_autogen_20251122_130000_count60"
    result = materialize_batch(instance, batch_id)
    assert result.success
    assert check_evaluations(result) == dict.fromkeys([*SUITE_NAMES, "duplicates", "leakage", "batch_metrics"], True)

    report = json.loads((home.reports_dir / f"{batch_id}.json").read_text())
    assert set(report) >= {"total_checks", "passed_checks", "failed_checks", "overall_pass", "recommendation", "results"}
    assert set(report["results"]) == set(SUITE_NAMES)
    assert report["overall_pass"] is True
    records = report["records"]
    assert records["generated"] == 60 == records["approved"] + records["rejected"]

    queued = home.queue_dir("normal") / f"{batch_id}.jsonl"
    lines = [json.loads(line) for line in queued.read_text().splitlines()]
    assert len(lines) == records["approved"]
    assert all(line["metadata"]["skill"] == "syllo" for line in lines)

    materialized = instance.get_latest_materialization_event(dg.AssetKey("queued_batch"))
    assert materialized.asset_materialization.partition == batch_id


def materialize_inference_batch(home, instance, batch_id, reply):
    """A batch whose replies come from a model that answers with ``reply(messages)``."""
    home.config_path.write_text("auto_generate:\n  source: inference\n")
    with fake_inference_server(reply=reply) as (_fake, url):
        return materialize_batch(instance, batch_id, inference_url=url)


def test_failing_check_blocks_the_queue_and_keeps_every_record(home, instance):
    batch_id = "binary_infer_20251122_130000_count40"
    result = materialize_inference_batch(home, instance, batch_id, lambda messages: "I can't help with that.")
    assert not result.success
    evaluations = check_evaluations(result)
    assert evaluations["diversity"] is False
    diversity = check_events(result)["diversity"]
    assert diversity.severity == dg.AssetCheckSeverity.ERROR
    metadata = {key: value.value for key, value in diversity.metadata.items()}
    assert metadata["threshold.diversity.unique_responses.min_value"] == 0.7
    assert metadata["observed.diversity.unique_responses"] < 0.7
    assert metadata["sample_failures"] != "none"
    assert TrainingQueue(home).total_depth() == 0

    report = json.loads((home.reports_dir / f"{batch_id}.json").read_text())
    assert report["overall_pass"] is False
    assert "diversity" in report["recommendation"]
    rejected = [json.loads(line) for line in (home.rejected_dir / f"{batch_id}.jsonl").read_text().splitlines()]
    assert len(rejected) == 40 == report["records"]["rejected"]
    assert all(row["reasons"] and row["record"]["messages"] for row in rejected)
    assert any(reason["code"] == "batch.rejected" for reason in rejected[0]["reasons"])
    assert not instance.get_latest_materialization_event(dg.AssetKey("queued_batch"))


def test_inference_server_down_queues_nothing_and_says_why(home, instance):
    home.config_path.write_text("auto_generate:\n  source: inference\n")
    with refused_port() as url:
        result = materialize_batch(instance, "syllo_infer_20251122_130000_count5", inference_url=url)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "inference server failed 5 of 5 requests" in failure.message or "inference server failed" in str(failure.event_specific_data.error)
    assert TrainingQueue(home).total_depth() == 0
    assert not list(home.reports_dir.iterdir())


def test_inference_batch_with_answers_is_queued_with_metadata(home, instance):
    home.config_path.write_text("auto_generate:\n  source: inference\n  priority: high\n  payload: {temperature: 0.1}\n")
    with fake_inference_server() as (fake, url):
        result = materialize_batch(instance, "binary_infer_20251122_130000_count20", inference_url=url)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert len(fake.chat_requests) == 20
    assert all(r.body["temperature"] == 0.1 for r in fake.chat_requests)
    queued = home.queue_dir("high") / "binary_infer_20251122_130000_count20.jsonl"
    first = json.loads(queued.read_text().splitlines()[0])
    assert first["metadata"]["source"] == "inference"
    assert first["metadata"]["reference_answer"] == first["metadata"]["answer"]
    from tdm_dagster.generate.generators import get_generator

    assert get_generator("binary").check_answer(first, first["messages"][-1]["content"])  # the fake answers right


def test_wrong_answers_from_the_model_end_in_rejected_with_expected_and_given(home, instance):
    """Replies are checked against the generator's answers: wrong ones are rejected with
    the reason, right ones are queued."""
    from tests.support.skill_solver import last_user, solve

    batch_id = "syllo_infer_20251122_130000_count60"
    wrong_prompts: list[str] = []

    def reply(messages):
        prompt = last_user(messages)
        if len(wrong_prompts) < 2 and prompt not in wrong_prompts:
            wrong_prompts.append(prompt)
        return " family sail2 ham2per comisealbilot pra12 famous dapfo" if prompt in wrong_prompts else solve(prompt)

    result = materialize_inference_batch(home, instance, batch_id, reply)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    rejected = [json.loads(line) for line in (home.rejected_dir / f"{batch_id}.jsonl").read_text().splitlines()]
    assert sorted(row["record"]["messages"][0]["content"] for row in rejected) == sorted(wrong_prompts)
    for row in rejected:
        [reason] = row["reasons"]
        assert reason["code"] == "answer.wrong" and reason["suggestion"]
        assert f"expected '{', '.join(row['record']['metadata']['answer'])}'" in reason["message"]
        assert "given 'family sail2 ham2per" in reason["message"]
    queued = (home.queue_dir("normal") / f"{batch_id}.jsonl").read_text().splitlines()
    assert len(queued) == 58
    report = json.loads((home.reports_dir / f"{batch_id}.json").read_text())
    assert report["answers"]["wrong"] == 2 and report["answers"]["correct"] == 58
    metrics = {key: value.value for key, value in check_events(result)["batch_metrics"].metadata.items()}
    assert (metrics["answers.checked"], metrics["answers.wrong"], metrics["answers.by_skill.syllo.wrong"]) == (60, 2, 2)


def test_a_model_answering_gibberish_queues_nothing(home, instance):
    batch_id = "syllo_infer_20251122_140000_count30"
    result = materialize_inference_batch(home, instance, batch_id, lambda messages: " family sail2 ham2per comisealbilot pra12 famous dapfo")
    assert not result.success
    assert TrainingQueue(home).total_depth() == 0
    rejected = [json.loads(line) for line in (home.rejected_dir / f"{batch_id}.jsonl").read_text().splitlines()]
    assert len(rejected) == 30
    assert all(any(reason["code"] == "answer.wrong" for reason in row["reasons"]) for row in rejected)


def test_run_config_overrides_count_and_seed(home, instance):
    run_config = {"ops": {"generated_batch": {"config": {"count": 12, "seed": 7}}}}
    result = materialize_batch(instance, "my-hand-made-batch", run_config=run_config)
    assert result.success
    plan = json.loads((home.batch_dir("my-hand-made-batch") / "batch.json").read_text())
    assert (plan["count"], plan["seed"]) == (12, 7)


def test_schema_rejections_are_kept_with_line_and_field(home, instance):
    """Records that break the spec are rejected before content checks, with where and why."""
    from tdm_dagster.records.batches import BatchPlan, BatchStore
    from tdm_dagster.gate.outcome import decide
    from tdm_dagster.generate.generators import get_generator
    from tdm_dagster.gate.quality import QualitySettings, run_quality
    from tdm_dagster.gate.reports import save_outcome
    from tdm_dagster.gate.schemas import schema_gate

    good = get_generator("binary").generate(1, 30, 3)
    records = [*good, {"messages": "oops"}, {"prompt": "x", "completion": "y"}]
    schema = schema_gate(records, "chat_sft_v1")
    outcome = decide(schema, run_quality(schema.conversations, QualitySettings()), "b1")
    BatchStore(home).save_generated(BatchPlan("b1", "binary", 1, 32, 3, "builtin", "normal", "chat_sft_v1", ""), records)
    save_outcome(home, "b1", records, outcome)
    rows = {row["line"]: row for row in map(json.loads, (home.rejected_dir / "b1.jsonl").read_text().splitlines())}
    assert rows[31]["reasons"][0]["field"] == "messages"
    assert rows[32]["reasons"][0]["code"] == "schema.unknown_field"
    assert rows[32]["record"] == {"prompt": "x", "completion": "y"}
    assert outcome.report["records"]["generated"] == 32 == outcome.report["records"]["approved"] + outcome.report["records"]["rejected"]


def test_skill_api_source_matches_local_generation(home, instance):
    """The remote path is real: the same generators behind their HTTP servers (one per
    skill, as in the seed design) give the same batch as in-process generation."""
    from tdm_dagster.generate.skill_api import create_app
    from tests.support.http_servers import running_server

    home.config_path.write_text("auto_generate:\n  source: skill_api\n  seed: 11\n")
    with running_server(create_app(["syllo"])) as syllo_url, running_server(create_app(["binary"])) as binary_url:
        result = materialize_batch(
            instance, "binary_skillapi_20251122_130000_count25", skill_urls={"syllo_url": syllo_url, "binary_url": binary_url}
        )
    assert result.success
    from tdm_dagster.generate.generators import get_generator

    generated = [json.loads(line) for line in (home.batch_dir("binary_skillapi_20251122_130000_count25") / "generated.jsonl").read_text().splitlines()]
    assert generated == get_generator("binary").generate(1, 25, 11)


def test_rerunning_the_checks_shows_the_saved_verdict_and_rewrites_nothing(home, instance):
    """The verdict is quality_report's: executing only the checks reads it, writes nothing."""
    batch_id = "syllo_autogen_20251122_140000_count30"
    first = materialize_batch(instance, batch_id)
    assert first.success
    verdict = [
        home.reports_dir / f"{batch_id}.json",
        *(home.batch_dir(batch_id) / name for name in ("approved.jsonl", "scores.jsonl", "gate_checks.json")),
    ]
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in verdict}
    job = dg.define_asset_job("batch", selection=dg.AssetSelection.assets(*batch_assets), partitions_def=batch_partitions)
    defs = dg.Definitions(assets=batch_assets, asset_checks=[quality_suites], jobs=[job], resources=batch_resources())
    rerun = defs.resolve_job_def("batch").execute_in_process(
        op_selection=["quality_suites"], partition_key=batch_id, instance=instance, raise_on_error=False
    )
    assert rerun.success
    assert not rerun.get_asset_materialization_events()  # no asset ran, only the checks
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in verdict} == before
    again, earlier = check_events(rerun), check_events(first)
    assert set(again) == set(earlier) == {*SUITE_NAMES, "duplicates", "leakage", "batch_metrics"}
    for name, evaluation in again.items():
        assert evaluation.asset_key == dg.AssetKey("quality_report")
        assert (evaluation.passed, evaluation.severity, evaluation.metadata) == (earlier[name].passed, earlier[name].severity, earlier[name].metadata)
