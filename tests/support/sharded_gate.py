"""The sharded gate's steps (sketch, shuffle, judge: what Ray runs) called in turn in this
process, beside the in-process gate on the same shards: both sides' per-record decisions,
to compare without a Ray cluster."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import run_gate

Decisions = dict[str, tuple[float | None, list[tuple[str, str]]]]
"""Record name -> (score, [(code, message)])."""


def sharded_and_in_process(paths: Sequence[Path], config: TdmConfig, level: str) -> tuple[Decisions, Decisions]:
    from tdm_dagster.gate.distributed.judge import judge_shard
    from tdm_dagster.gate.distributed.shards import combined_input
    from tdm_dagster.gate.distributed.shuffle import reduce_partition
    from tdm_dagster.gate.distributed.sketch import sketch_shard

    mapped = [sketch_shard(i, str(p), "b", config, level, len(paths)) for i, p in enumerate(paths)]
    reduced = [reduce_partition(len(paths), *[parts[p] for _, _, parts in mapped]) for p in range(len(paths))]
    offsets = np.concatenate(([0], np.cumsum([valid for valid, _, _ in mapped]))).astype(int).tolist()
    sketches = [sketch for _, sketch, _ in mapped]
    judged: Decisions = {}
    for i, path in enumerate(paths):
        _, decisions = judge_shard(i, str(path), "b", config, level, offsets, sketches.__getitem__, [r[i] for r in reduced])
        for position, key in enumerate(decisions.keys):
            judged[key] = (decisions.scores.get(position), [(x.code, x.message) for x in decisions.issues.get(position, [])])
    gate_input, _ = combined_input(paths, "b", config.gate.max_record_bytes)
    outcome = run_gate(gate_input, config, level=level)
    in_process = {
        key: (outcome.scores.get(p), [(x.code, x.message) for x in outcome.issues.get(p, [])]) for p, key in enumerate(gate_input.keys)
    }
    return judged, in_process
