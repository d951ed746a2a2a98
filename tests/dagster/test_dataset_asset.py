"""training_dataset: approved batches become dataset versions, materialized for real."""

import dagster as dg

from tdm_dagster.assets import batch_assets, training_dataset
from tdm_dagster.checks import quality_suites
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.resources import (
    InferenceServerResource,
    SkillApiResource,
    TdmHomeResource,
)

RESOURCES = {"tdm": TdmHomeResource(), "inference": InferenceServerResource(), "skill_api": SkillApiResource()}


def queue_batch(instance, batch_id):
    instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    assert dg.materialize([*batch_assets, quality_suites], partition_key=batch_id, instance=instance, resources=RESOURCES).success


def materialize_dataset(instance):
    result = dg.materialize([training_dataset], instance=instance, resources=RESOURCES)
    assert result.success
    [event] = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_versions_follow_approved_batches(home):
    with dg.instance_for_test() as instance:
        queue_batch(instance, "binary_autogen_20251122_130000_count30")
        first = materialize_dataset(instance)
        assert (first["version"], first["dagster/row_count"], first["source_batches"]) == ("1.0", 30, 1)
        assert materialize_dataset(instance)["version"] == "1.0"  # nothing new: no new version
        queue_batch(instance, "syllo_autogen_20251122_140000_count20")
        second = materialize_dataset(instance)
        assert (second["version"], second["dagster/row_count"], second["source_batches"]) == ("1.1", 50, 2)
        assert second["checksum"] != first["checksum"]
    registry = DatasetRegistry(home)
    assert [v.version for v in registry.versions("training")] == ["1.0", "1.1"]
    assert registry.verify("training").ok
