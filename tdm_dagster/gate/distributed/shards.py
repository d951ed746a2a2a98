"""A batch split into shards (Parquet files, or any file tdm reads), one shard at a time.

A shard is the unit of work and of memory: a worker holds one shard's records, never
the batch. Records keep the name the in-process gate gives them (``file:line``), so the
two engines' findings read the same; shard file names must therefore be distinct.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tdm_dagster.gate.run import GateInput

SHARD_SUFFIXES = (".parquet",)


class ShardError(ValueError):
    """The shards cannot be gated as given (none found, names that collide)."""


def shard_paths(source: str | os.PathLike[str]) -> list[Path]:
    """``source`` itself (a file), or the Parquet files of a folder in name order."""
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ShardError(f"{path}: no such file or folder of shards")
    paths = sorted(p for p in path.iterdir() if p.suffix in SHARD_SUFFIXES and p.is_file())
    if not paths:
        raise ShardError(f"{path}: no {' or '.join(SHARD_SUFFIXES)} shard in the folder")
    return paths


def check_names(paths: Sequence[Path]) -> None:
    """Records are named ``<file name>:<line>``: two shards of one name would share names."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.name in seen:
            raise ShardError(f"shards {seen[path.name]} and {path} have the same file name; rename one")
        seen[path.name] = path


def load_shard(path: str | os.PathLike[str], batch_id: str, max_record_bytes: int) -> GateInput:
    from tdm_dagster.ingest.load import load_file

    return GateInput.from_loaded(load_file(path, max_record_bytes=max_record_bytes), batch_id)


def combined_input(paths: Sequence[Path], batch_id: str, max_record_bytes: int) -> tuple[GateInput, list[int]]:
    """All shards as one batch (the in-process engine), and the records of each shard."""
    records, specs, keys, sources, issues, sizes = [], [], [], [], {}, []
    for path in paths:
        shard = load_shard(path, batch_id, max_record_bytes)
        issues.update({len(records) + position: found for position, found in shard.read_issues.items()})
        records.extend(shard.records)
        specs.extend(shard.specs)
        keys.extend(shard.keys)
        sources.extend(shard.sources or [])
        sizes.append(len(shard.records))
    return GateInput(batch_id, records, specs, keys, issues, sources), sizes
