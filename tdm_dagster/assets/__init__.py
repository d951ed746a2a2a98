from tdm_dagster.assets.batches import (
    generated_batch,
    quality_report,
    queued_batch,
    validated_batch,
)
from tdm_dagster.assets.datasets import training_dataset

batch_assets = [generated_batch, validated_batch, quality_report, queued_batch]

__all__ = ["batch_assets", "generated_batch", "quality_report", "queued_batch", "training_dataset", "validated_batch"]
