"""The scheduled jobs that keep the training dataset tidy, run for real."""

import dagster as dg
import pytest

from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.generate.generators import get_generator

STOPPED = dg.DefaultScheduleStatus.STOPPED


def test_deduplicate_then_export(home):
    from tdm_dagster.definitions import defs

    records = get_generator("binary").generate(3, 30, 9)
    registry = DatasetRegistry(home)
    registry.create("training")
    registry.append("training", records + records[:5])
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("deduplicate_dataset").execute_in_process(instance=instance).success
        assert registry.version_info("training").record_count == 30
        assert defs.resolve_job_def("export_dataset").execute_in_process(instance=instance).success
    version = registry.version_info("training").version
    folder = home.root / "exports" / f"training-{version}"
    assert len((folder / "training.jsonl").read_text().splitlines()) == 30
    import datasets

    assert len(datasets.load_from_disk(str(folder / "training_hf"))) == 30


def test_schedules_are_off_by_default_at_the_sam_cadence():
    from tdm_dagster.definitions import defs

    assert {s.name: (s.default_status, s.cron_schedule) for s in defs.schedules} == {
        "generate_and_queue_schedule": (STOPPED, "0 * * * *"),
        "mine_sources_schedule": (STOPPED, "15 */6 * * *"),
        "recheck_quality_schedule": (STOPPED, "45 */12 * * *"),
        "deduplicate_dataset_schedule": (STOPPED, "30 2 * * *"),
        "export_dataset_schedule": (STOPPED, "0 3 * * *"),
        "refresh_stats_schedule": (STOPPED, "5 * * * *"),
    }


def test_schedules_follow_the_config(home):
    from tdm_dagster.config.settings import ConfigError, load_config
    from tdm_dagster.schedules import build_schedules

    home.config_path.write_text('schedules:\n  recheck_quality: "0 6,18 * * *"\n')
    crons = {s.name: s.cron_schedule for s in build_schedules(load_config(home).schedules)}
    assert crons["recheck_quality_schedule"] == "0 6,18 * * *" and crons["mine_sources_schedule"] == "15 */6 * * *"
    home.config_path.write_text('schedules:\n  recheck_quality: "every noon"\n')
    with pytest.raises(ConfigError, match="schedules.recheck_quality is 'every noon'; expected a cron expression"):
        load_config(home)


def test_mined_sources_feed_the_inbox(home):
    """This repository's own history and README, collected into inbox files whose records
    pass the schema gate."""
    import json
    from pathlib import Path

    from tdm_dagster.assets.collect import mined_sources
    from tdm_dagster.resources import TdmHomeResource
    from tdm_dagster.gate.schemas import schema_gate

    root = Path(__file__).resolve().parents[2]
    home.config_path.write_text(f"collectors:\n  git_repos: [{json.dumps(str(root))}]\n  docs: [{json.dumps(str(root / 'README.md'))}]\n  max_commits: 20\n")
    result = dg.materialize([mined_sources], resources={"tdm": TdmHomeResource()})
    assert result.success
    files = sorted((home.root / "inbox").glob("mined_*.jsonl"))
    assert {f.name.split("_")[1] for f in files} == {"git", "docs"}
    for path in files:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert records and len(schema_gate(records, "chat_sft_v1").valid_indices) == len(records)
