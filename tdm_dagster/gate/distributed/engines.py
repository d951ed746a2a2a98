"""Run the sharded gate with the configured engine and write its output folder."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdm_dagster.config.sections import GATE_ENGINES
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.files.atomic import read_json
from tdm_dagster.gate.distributed.output import decisions_file, write_decisions, write_report
from tdm_dagster.gate.distributed.shards import check_names, combined_input, shard_paths
from tdm_dagster.gate.run import run_gate, suites_for

ENGINES = GATE_ENGINES


def _in_process(paths: Sequence[Path], config: TdmConfig, level: str, batch_id: str, out_dir: Path) -> dict[str, Any]:
    gate_input, sizes = combined_input(paths, batch_id, config.gate.max_record_bytes)
    outcome = run_gate(gate_input, config, level=level)
    start = 0
    for shard, (path, size) in enumerate(zip(paths, sizes)):
        issues = {p - start: outcome.issues[p] for p in range(start, start + size) if p in outcome.issues}
        scores = {p - start: outcome.scores[p] for p in range(start, start + size) if p in outcome.scores}
        write_decisions(decisions_file(out_dir, shard, path), gate_input.keys[start : start + size], issues, scores)
        start += size
    return outcome.report


def gate_shards(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: TdmConfig,
    out_dir: str | os.PathLike[str],
    *,
    batch_id: str = "",
    level: str | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """Gate a folder of Parquet shards (or a list of files) as one batch; write
    ``out_dir/decisions/`` and ``out_dir/report.json``; return what ``report.json`` holds.

    ``engine`` defaults to ``config.gate.engine``; on Ray the cluster is the one this
    process is connected to, else ``config.ray.address`` (None: a local Ray)."""
    started = time.perf_counter()
    engine = engine or config.gate.engine
    if engine not in ENGINES:
        raise ValueError(f"gate engine {engine!r} is not one of {', '.join(ENGINES)}")
    level = level or config.gate.level
    suites_for(level)
    paths = shard_paths(source) if isinstance(source, (str, os.PathLike)) else [Path(p) for p in source]
    check_names(paths)
    out = Path(out_dir)
    batch_id = batch_id or out.name
    if engine == "ray":
        from tdm_dagster.gate.distributed.ray_engine import gate_on_ray, ray_session

        with ray_session(config.ray.address):
            report = gate_on_ray(paths, config, level, batch_id, out)
    else:
        report = _in_process(paths, config, level, batch_id, out)
    run = {"engine": engine, "shards": len(paths), "seconds": round(time.perf_counter() - started, 3)}
    for key in ("stage_seconds", "task_cpu_seconds", "cluster"):  # on Ray
        if key in report:
            run[key] = report.pop(key)
    return read_json(write_report(out, report, run))
