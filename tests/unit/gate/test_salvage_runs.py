"""Salvage per source, through the real front ends: ``tdm datasets import`` as a process,
an inbox file through the inbox sensor's Dagster run, a generated batch through its
Dagster assets and checks against a real (fake) inference server."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tdm_dagster.assets import batch_assets, training_dataset
from tdm_dagster.checks import quality_suites
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.jobs import INGEST_INBOX
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.resources import InferenceServerResource, SkillApiResource, TdmHomeResource
from tdm_dagster.sensors import inbox_sensor
from tests.support.fake_inference_server import echo_reply
from tests.support.fixture_data import GSM8K
from tests.support.hostile_corpus import CORPUS, good

BIN = Path(sys.executable).parent
HOSTILE_KINDS = ("nesting_5000_levels", "integer_5000_digits", "lone_high_surrogate", "lone_surrogate_in_key",
                 "nan_literal", "float_overflow_1e999", "duplicate_keys", "nested_objects_5000")  # fmt: skip


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tdm(home, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("TDM_", "DAGSTER_HOME"))}
    return subprocess.run([str(BIN / "tdm"), *args], env={**environ, "TDM_HOME": str(home.root), **env},
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_import_of_gsm8k_with_duplicates_keeps_the_good_records(home, tmp_path):
    """The issue's 2,000 GSM8K records + 100 duplicates, at > 5 % (on 120 of the fixture's records, for time)."""
    problems = json.loads(GSM8K.read_text())[:120]
    path = tmp_path / "gsm8k_with_copies.json"
    path.write_text(json.dumps(problems + problems[:8]))  # 8 of 128: 6.25 % duplicates
    kept = tdm(home, "datasets", "import", "kept", str(path))
    assert kept.returncode == 0, kept.stderr
    assert "120 approved, 8 rejected; the batch failed (failed checks: diversity; validity 0.938 < 0.95), its 120 passing records were salvaged" in kept.stdout
    registry = DatasetRegistry(home)
    assert list(registry.records("kept")) == problems  # each once, as it came
    refused = tdm(home, "datasets", "import", "refused", str(path), "--no-salvage")
    assert refused.returncode == 1 and "nothing added" in refused.stderr
    assert "0 approved, 128 rejected; batch rejected: failed checks: diversity; validity 0.938 < 0.95" in refused.stderr
    configured = tdm(home, "datasets", "import", "configured", str(path), "--json", TDM_GATE_ON_BATCH_FAILURE="{import: reject}")
    assert configured.returncode == 1 and "nothing added" in configured.stderr
    assert [info.name for info in registry.list_datasets()] == ["kept"]
    rejected = sorted(home.rejected_dir.glob("dataset_kept_*.jsonl"))
    rows = [json.loads(line) for line in rejected[0].read_text().splitlines()]
    assert len(rows) == 8 and all("exact duplicate" in row["reasons"][0]["message"] for row in rows)


def hostile_file() -> bytes:
    """100 good alpaca records with 8 hostile lines among them (108 lines)."""
    by_kind = {kind.kind: kind for kind in CORPUS}
    bad = [by_kind[name].build().split(b"\n")[1] for name in HOSTILE_KINDS]  # the middle line of good, bad, good
    lines = [json.dumps(good(n)).encode() for n in range(100)]
    for index, line in enumerate(bad):
        lines.insert(12 * index + 5, line)
    return b"\n".join(lines) + b"\n"


def ingest_by_sensor(home, instance) -> dict:
    """Drop the file and let the inbox sensor's run take it, as Dagster does."""
    home.inbox_dir.mkdir(exist_ok=True)
    (home.inbox_dir / "hostile.jsonl").write_bytes(hostile_file())
    request = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"tdm": TdmHomeResource()}))
    from tdm_dagster.definitions import defs

    result = defs.resolve_job_def(INGEST_INBOX).execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    assert result.success
    [outcome] = result.output_for_node("ingest_inbox_files")
    return outcome


def check_evaluations(instance, batch_id: str) -> dict[str, dg.AssetCheckEvaluation]:
    records = instance.get_records_for_run(instance.get_runs(dg.RunsFilter(tags={"dagster/partition": batch_id}))[0].run_id,
                                           of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records  # fmt: skip
    return {r.event_log_entry.dagster_event.event_specific_data.check_name: r.event_log_entry.dagster_event.event_specific_data for r in records}


def queued(home, batch_id: str) -> list[dict]:
    path = home.queue_dir("normal") / f"{batch_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_inbox_file_with_8_hostile_lines_queues_its_100_good_records(home, instance):
    home.config_path.write_text("inbox:\n  settle_sec: 0\n")
    outcome = ingest_by_sensor(home, instance)
    batch_id = outcome["batch_id"]
    assert outcome["queued"] and outcome["verdict"].startswith("salvage: 100 of 108 records kept, 8 rejected; the batch failed:")
    assert sorted(r["messages"][0]["content"] for r in queued(home, batch_id)) == sorted(good(n)["instruction"] for n in range(100))
    rejected = [json.loads(line) for line in (home.rejected_dir / f"{batch_id}.jsonl").read_text().splitlines()]
    assert len(rejected) == 8 and all(row["reasons"][0]["code"].startswith("read.") for row in rejected)
    report = json.loads(home.report_file(batch_id).read_text())
    assert report["overall_pass"] is False and report["salvage"]["salvaged"] == 100 and report["salvage"]["rejected"] == 8
    assert report["salvage"]["policy"] == "gate.on_batch_failure.inbox: salvage"
    scores = [json.loads(line) for line in (home.batch_dir(batch_id) / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 100 and all(row["salvaged"] and row["tier"] == "raw" for row in scores)  # judged by nothing (too short for the reply model): bronze at most; salvaged: a tier down
    failing = {name: e for name, e in check_evaluations(instance, batch_id).items() if not e.passed}
    assert failing and all(e.severity == dg.AssetCheckSeverity.WARN for e in failing.values())  # the batch failed, visibly
    assert any("100 records that pass on their own were salvaged" in (e.description or "") for e in failing.values())


def test_inbox_set_to_reject_queues_none(home, instance):
    home.config_path.write_text("inbox:\n  settle_sec: 0\ngate:\n  on_batch_failure:\n    inbox: reject\n")
    outcome = ingest_by_sensor(home, instance)
    assert not outcome["queued"] and queued(home, outcome["batch_id"]) == []
    assert len((home.rejected_dir / f"{outcome['batch_id']}.jsonl").read_text().splitlines()) == 108
    failing = [e for e in check_evaluations(instance, outcome["batch_id"]).values() if not e.passed]
    assert failing and all(e.severity == dg.AssetCheckSeverity.ERROR for e in failing)


def run_generated(instance, batch_id: str, inference_url: str) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    return dg.materialize(
        [*batch_assets, quality_suites], partition_key=batch_id, instance=instance, raise_on_error=False,
        resources={"tdm": TdmHomeResource(), "inference": InferenceServerResource(base_url=inference_url, max_attempts=1), "skill_api": SkillApiResource()},
    )  # fmt: skip


def one_in_five_wrong():
    """Replies from a generator that answers every fifth prompt wrongly, the rest right."""
    replies = itertools.count(1)

    def reply(messages: list[dict]) -> str:
        return "The answer is 0b101010101 and nothing else." if next(replies) % 5 == 0 else echo_reply(messages)

    return reply


@pytest.mark.parametrize("configured", ["", "gate:\n  on_batch_failure:\n    generated: salvage\n"])
def test_generated_batches_are_rejected_whole_unless_configured(home, instance, fake, server, configured):
    home.config_path.write_text(f"auto_generate:\n  source: inference\n{configured}")
    fake.reply = one_in_five_wrong()
    batch_id = "binary_infer_20251122_130000_count40"
    result = run_generated(instance, batch_id, server[1])
    report = json.loads(home.report_file(batch_id).read_text())
    wrong = report["answers"]["wrong"]
    assert report["overall_pass"] is False and 0.05 * 40 < wrong < 40  # more than 5 % wrong: the batch fails
    if not configured:
        assert not result.success and queued(home, batch_id) == [] and report["records"]["approved"] == 0
        return
    assert result.success
    assert len(queued(home, batch_id)) == report["records"]["salvaged"] == 40 - wrong
    assert report["salvage"]["policy"] == "gate.on_batch_failure.generated: salvage"
    assert report["tiers"]["gold"] == 0 and report["tiers"]["silver"] == 40 - wrong  # verified, salvaged: silver
    dataset = dg.materialize([training_dataset], instance=instance, resources={"tdm": TdmHomeResource()})
    assert dataset.success and len(list(DatasetRegistry(home).records("training"))) == 40 - wrong  # joins the dataset too
