"""Following the chain: a checkpoint back to its data, and data forward to checkpoints.

A checkpoint is known by its *key*, ``RUN/checkpoint-N`` (``RUN`` is the training run,
the Dagster partition key): the same on the trainer box and on a serving box that pulled
it, whatever either's ``TDM_HOME`` path. Its lineage is read from its own
``tdm_checkpoint.json`` (``lineage.capture``); its evaluation from the evaluation history
and its deployments from ``serving/deployments.json``, both matched by key; the dataset
versions are those of the local registry whose source batches include one it trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import read_json
from tdm_dagster.home import TdmHome
from tdm_dagster.lineage.capture import count, expand, in_ranges
from tdm_dagster.training.checkpoints import CHECKPOINTS_DIR, META_FILE, list_checkpoints

DEPLOYED = "deployed"


class LineageError(ValueError):
    """A checkpoint, batch or record that cannot be found or read, with where it was looked for."""


def key_of(path: str | Path) -> str:
    """``RUN/checkpoint-N`` of a checkpoint folder ``.../RUN/checkpoints/checkpoint-N``."""
    path = Path(path)
    return f"{path.parent.parent.name}/{path.name}"


def _deployment_entries(home: TdmHome) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(target, attempt, serving now) for every deployment and rollback of every target."""
    from tdm_dagster.serving.history import read_record

    for target, state in read_record(home.serving_dir).get("targets", {}).items():
        active = state.get("active") or []
        for entry in state.get("history") or []:
            if entry.get("outcome") in {"deployed", "rollback"} and entry.get("checkpoint"):
                yield target, entry, bool(active) and active[-1] == entry.get("name")


def resolve(home: TdmHome, wanted: str) -> Path:
    """The checkpoint folder ``wanted`` names: ``deployed`` (the one serving now), a training
    run, ``RUN/checkpoint-N``, ``checkpoint-N`` or a path (as ``tdm deploy`` reads names)."""
    from tdm_dagster.evaluate.comparison import load_history
    from tdm_dagster.serving.choice import choose_checkpoint
    from tdm_dagster.serving.deploy import current_deployment

    if wanted == DEPLOYED:
        name = current_deployment(home.serving_dir)
        if name is None:
            raise LineageError(f"nothing is deployed: {home.serving_dir / 'current'} names no deployment")
        trained = next((Path(e["checkpoint"]) for _, e, now in _deployment_entries(home) if now and e.get("name") == name), None)
        return trained if trained is not None and (trained / META_FILE).is_file() else home.serving_dir / name
    chosen = choose_checkpoint(load_history(home), wanted, newest=False, training_dir=home.training_dir)
    if isinstance(chosen, str):
        raise LineageError(chosen)
    return Path(chosen["checkpoint"])


def _meta(folder: Path) -> dict[str, Any]:
    meta = read_json(folder / META_FILE)
    if not isinstance(meta, dict):
        raise LineageError(f"{folder} is not a checkpoint: no readable {META_FILE}")
    return meta


def _evaluation(home: TdmHome, key: str) -> dict[str, Any] | None:
    from tdm_dagster.evaluate.comparison import load_history

    entry = next((e for e in reversed(load_history(home)) if key_of(e.get("checkpoint", "")) == key), None)
    if entry is None:
        return None
    return {name: entry.get(name) for name in ("evaluated_at", "overall_accuracy", "held_out_loss", "skills", "seen_in_training")}


def _deployments(home: TdmHome, key: str) -> list[dict[str, Any]]:
    return [
        {"target": target, "name": entry.get("name"), "outcome": entry["outcome"], "time": entry.get("time"),
         "score": entry.get("score"), "serving_now": now}
        for target, entry, now in _deployment_entries(home) if key_of(entry["checkpoint"]) == key
    ]  # fmt: skip


def _dataset_versions(home: TdmHome, batch_ids: set[str]) -> list[dict[str, Any]]:
    """Versions of local datasets holding any of ``batch_ids`` (none without a registry)."""
    if not batch_ids or not home.datasets_dir.is_dir():
        return []
    from tdm_dagster.datasets import DatasetRegistry

    registry = DatasetRegistry(home)
    found = []
    for dataset in registry.list_datasets():
        for version in registry.versions(dataset.name):
            held = sorted(batch_ids & set(version.source_batches))
            if held:
                found.append({"dataset": dataset.name, "version": version.version, "batches": held})
    return found


def checkpoint_lineage(home: TdmHome, folder: Path) -> dict[str, Any]:
    """Everything known of the checkpoint at ``folder``: run, batches with their sources,
    gates, reports and record ids, dataset versions, evaluation, deployments."""
    meta = _meta(folder)
    sources = meta.get("sources") or {}
    lineage = sources.get("lineage")
    key = f"{lineage['run']}/{meta.get('name', folder.name)}" if isinstance(lineage, dict) and lineage.get("run") else key_of(folder)
    batches = []
    for entry in (lineage or {}).get("batches", []):
        ids = [f"{entry['batch_id']}:{line}" for line in expand(entry.get("record_lines", []))]
        batches.append({**entry, "records": len(ids), "record_ids": ids})
    return {
        "checkpoint": key,
        "path": str(folder),
        "run": {
            "key": key.split("/")[0],
            "step": meta.get("step"),
            "created_at": meta.get("created_at"),
            "device": meta.get("device"),
            "claim_id": sources.get("claim_id"),
            "metrics": meta.get("metrics") or {},
            "queue_files": sources.get("queue_files") or [],
        },
        "recorded": lineage is not None,
        "profile": (lineage or {}).get("profile"),
        "batches": batches,
        "examples": (lineage or {}).get("examples", meta.get("metrics", {}).get("examples")),
        "records": sum(entry["records"] for entry in batches),
        "dataset_versions": _dataset_versions(home, {entry["batch_id"] for entry in batches}),
        "evaluation": _evaluation(home, key),
        "deployments": _deployments(home, key),
    }


def lineage_of(home: TdmHome, wanted: str, *, only_home: bool = False) -> dict[str, Any]:
    """:func:`checkpoint_lineage` of the checkpoint ``wanted`` names (:func:`resolve`);
    ``only_home``: a name that resolves outside ``training/`` and ``serving/`` (a path a
    remote client sent) names nothing."""
    folder = resolve(home, wanted)
    if only_home and not any(folder.resolve().is_relative_to(place.resolve()) for place in (home.training_dir, home.serving_dir)):
        raise LineageError(f"no checkpoint {wanted!r} under {home.training_dir} or {home.serving_dir}")
    return checkpoint_lineage(home, folder)


def _all_checkpoints(home: TdmHome) -> Iterator[Path]:
    """Every complete checkpoint under ``training/``, then every deployed folder (a serving
    box may hold a deployment whose checkpoint folder is gone)."""
    if home.training_dir.is_dir():
        for run in sorted(home.training_dir.iterdir()):
            if (run / CHECKPOINTS_DIR).is_dir():
                yield from (info.path for info in list_checkpoints(run))
    if home.serving_dir.is_dir():
        yield from sorted(p for p in home.serving_dir.iterdir() if p.is_dir() and (p / META_FILE).is_file())


def parse_record_id(text: str) -> tuple[str, int]:
    """``BATCH:LINE`` -> (batch, line); a clear error for anything else."""
    batch, sep, line = text.rpartition(":")
    if not sep or not batch or not line.isdigit() or int(line) < 1:
        raise LineageError(f"{text!r} is not a record id BATCH:LINE (LINE counts from 1, as in rejected/ and the reports)")
    return batch, int(line)


def trained_on(home: TdmHome, batch_id: str, line: int | None = None) -> dict[str, Any]:
    """The checkpoints trained on batch ``batch_id`` (with ``line``: on that record of it),
    each with its evaluation and deployments: which models a bad batch reached."""
    seen: set[str] = set()
    found = []
    for folder in _all_checkpoints(home):
        try:
            meta = _meta(folder)
        except LineageError:
            continue
        lineage = (meta.get("sources") or {}).get("lineage") or {}
        entry = next((b for b in lineage.get("batches", []) if b.get("batch_id") == batch_id), None)
        if entry is None or (line is not None and not in_ranges(line, entry.get("record_lines", []))):
            continue
        key = f"{lineage['run']}/{meta.get('name', folder.name)}" if lineage.get("run") else key_of(folder)
        if key in seen:
            continue
        seen.add(key)
        deployments = _deployments(home, key)
        found.append({
            "checkpoint": key, "path": str(folder), "records_from_batch": count(entry.get("record_lines", [])),
            "evaluation": _evaluation(home, key), "deployments": deployments,
            "serving_now": any(d["serving_now"] for d in deployments),
        })  # fmt: skip
    return {"batch_id": batch_id, "line": line, "checkpoints": found, "serving_now": [c["checkpoint"] for c in found if c["serving_now"]]}
