"""The scheduled jobs that keep the training dataset tidy, run for real."""

import dagster as dg

from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.generators import get_generator


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


def test_schedules_are_off_by_default():
    from tdm_dagster.definitions import defs

    assert {s.name: s.default_status for s in defs.schedules} == dict.fromkeys(
        ["generate_and_queue_schedule", "deduplicate_dataset_schedule", "export_dataset_schedule"], dg.DefaultScheduleStatus.STOPPED
    )
