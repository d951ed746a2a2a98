"""The sharded gate on a Ray cluster: map (sketch each shard) -> shuffle by key ->
reduce (copies, distinct responses, LSH candidates) -> judge each shard -> verdict.

Ray is imported inside the functions. Tasks are plain functions of this package run with
``ray.remote``; every intermediate result is a Ray object, so nothing but small counts
goes through the driver, which then reads the decisions back one shard at a time.

Memory per worker: one shard's records (map, judge), one partition of keys (reduce:
about one shard's worth of keys, as there are as many partitions as shards), and one
partner shard's shingle sets at a time (judge). The object store holds the map outputs
until the reducers have read them and the sketches until the judges are done; Ray
spills objects to local disk when the store is full, so its size bounds memory, not
the input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.distributed.combine import combine
from tdm_dagster.gate.distributed.judge import judge_shard
from tdm_dagster.gate.distributed.output import decisions_file, write_decisions
from tdm_dagster.gate.distributed.shuffle import reduce_partition
from tdm_dagster.gate.distributed.sketch import sketch_shard


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """A Ray connection: the one already made in this process (e.g. by the Dagster
    resource), else ``ray.init(address)`` for the run (None: a local Ray on this machine)."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _sketch_task(shard: int, path: str, batch_id: str, config: TdmConfig, level: str, partitions: int) -> tuple:
    """The map step; its first output is (schema-valid records, CPU seconds the task took)."""
    started = time.process_time()
    valid, sketch, parts = sketch_shard(shard, path, batch_id, config, level, partitions)
    return ((valid, time.process_time() - started), sketch, *parts)


def _reduce_task(shards: int, *parts: np.ndarray) -> list:
    """The reduce step; its last output is (distinct responses, CPU seconds the task took)."""
    started = time.process_time()
    found = reduce_partition(shards, *parts)
    return [*found[:-1], (found[-1], time.process_time() - started)]


def _judge_task(shard: int, path: str, batch_id: str, config: TdmConfig, level: str, offsets: list[int], sketches: list, *pairs: Any) -> tuple:
    """The judge step; its first output is (totals, CPU seconds the task took)."""
    import ray

    started = time.process_time()
    totals, decisions = judge_shard(shard, path, batch_id, config, level, offsets, lambda s: ray.get(sketches[s]), pairs)
    return (totals, time.process_time() - started), decisions


def gate_on_ray(paths: Sequence[Path], config: TdmConfig, level: str, batch_id: str, out_dir: Path) -> dict[str, Any]:
    """Gate the shards on the connected Ray cluster; writes the decisions, returns the report."""
    import ray

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    task_cpu: dict[str, float] = {}

    def lap(stage: str) -> None:
        seconds[stage] = round(time.perf_counter() - started - sum(seconds.values()), 3)

    shards = partitions = len(paths)
    sketch = ray.remote(_sketch_task).options(num_returns=partitions + 2)
    mapped = [sketch.remote(i, str(path), batch_id, config, level, partitions) for i, path in enumerate(paths)]
    reduce = ray.remote(_reduce_task).options(num_returns=shards + 1)
    reduced = [reduce.remote(shards, *[outputs[2 + p] for outputs in mapped]) for p in range(partitions)]
    valid, task_cpu["sketch"] = _with_cpu(ray.get([outputs[0] for outputs in mapped]))  # schema-valid records per shard
    lap("sketch")
    sketches = [outputs[1] for outputs in mapped]
    del mapped  # the partitions are the reducers' now: Ray frees each once read
    offsets = np.concatenate(([0], np.cumsum(valid))).astype(int).tolist()
    judge = ray.remote(_judge_task).options(num_returns=2)
    judged = [
        judge.remote(i, str(path), batch_id, config, level, offsets, sketches, *[outputs[i] for outputs in reduced])
        for i, path in enumerate(paths)
    ]
    distinct_per_partition, task_cpu["shuffle"] = _with_cpu(ray.get([outputs[shards] for outputs in reduced]))
    distinct = sum(distinct_per_partition)
    lap("shuffle")
    del reduced
    totals, task_cpu["judge"] = _with_cpu(ray.get([outputs[0] for outputs in judged]))
    lap("judge")
    verdict = combine(totals, distinct, config, level, batch_id)
    for i, path in enumerate(paths):
        decisions = ray.get(judged[i][1])
        write_decisions(decisions_file(out_dir, i, path), decisions.keys, decisions.issues, decisions.scores, verdict.batch_issue)
        judged[i] = None  # one shard's decisions in the driver at a time
    lap("write")
    nodes = sum(1 for node in ray.nodes() if node["Alive"])
    cluster = {"nodes": nodes, "cpus": ray.cluster_resources().get("CPU", 0)}
    return {**verdict.report, "stage_seconds": seconds, "task_cpu_seconds": task_cpu, "cluster": cluster}


def _with_cpu(outputs: list[tuple[Any, float]]) -> tuple[list[Any], float]:
    """Tasks' values, and the CPU seconds they took together."""
    return [value for value, _ in outputs], round(sum(cpu for _, cpu in outputs), 3)
