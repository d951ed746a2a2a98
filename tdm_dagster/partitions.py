"""One Dagster dynamic partition per batch; the key is the batch id."""

import dagster as dg

batch_partitions = dg.DynamicPartitionsDefinition(name="batches")
