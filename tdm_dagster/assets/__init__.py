from tdm_dagster.assets.datasets import training_dataset
from tdm_dagster.assets.gate import quality_report, validated_batch
from tdm_dagster.assets.generate import generated_batch
from tdm_dagster.assets.queue import queued_batch

batch_assets = [generated_batch, validated_batch, quality_report, queued_batch]

__all__ = ["batch_assets", "generated_batch", "quality_report", "queued_batch", "training_dataset", "validated_batch"]
