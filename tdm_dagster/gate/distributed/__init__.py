"""The gate over a batch too large for one process: Parquet shards, in-process or on Ray.

:func:`gate_shards` is the entry: ``engine`` ``in_process`` reads every shard into one
batch and runs :func:`tdm_dagster.gate.run.run_gate`; ``ray`` runs the same gate shard by
shard on a Ray cluster (:mod:`.ray_engine`), with the findings that look across the
batch (exact and near duplicates, distinct responses, the suites' batch rules and the
batch metrics) computed by a distributed shuffle. Both write the same files
(:mod:`.output`): the same records approved and rejected with the same issues.
"""

from tdm_dagster.gate.distributed.engines import ENGINES, gate_shards

__all__ = ["ENGINES", "gate_shards"]
