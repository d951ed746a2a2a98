"""``tdm lineage``: from a checkpoint back to its batches and records, or from a batch or a
record forward to the checkpoints (and deployments) trained on it."""

from __future__ import annotations

import json
from typing import Any

import click

from tdm_dagster.cli import common


def _lines(ranges: list[list[int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges) or "none"


def _source(source: dict[str, Any]) -> str:
    if source.get("kind") == "generator":
        return f"generator {source['generator']}, skill {source.get('skill')} level {source.get('level')}, seed {source.get('seed')}"
    if source.get("kind") == "inbox":
        return f"inbox file {source.get('file')} (from its record {source.get('first_record')})"
    return f"{source.get('kind')}" + (f", skill {source['skill']}" if source.get("skill") else "")


def _evaluation(evaluation: dict[str, Any] | None) -> str:
    if not evaluation:
        return "not evaluated"
    return f"accuracy {evaluation['overall_accuracy']:.1%}, held-out loss {evaluation['held_out_loss']:.4f} ({evaluation['evaluated_at']})"


def _deployments(deployments: list[dict[str, Any]]) -> list[str]:
    return [
        f"  {d['target']}: {d['outcome']} as {d['name']} at {d['time']}" + (" (serving now)" if d["serving_now"] else "")
        for d in deployments
    ] or ["  never deployed"]


def _checkpoint_text(found: dict[str, Any]) -> str:
    run, metrics = found["run"], found["run"]["metrics"]
    lines = [
        f"checkpoint {found['checkpoint']} ({found['path']})",
        f"training run {run['key']}: step {run['step']}, {found['examples']} examples, created {run['created_at']} on {run['device']}"
        + (f", loss {metrics['loss_first']:.3f} -> {metrics['loss']:.3f}" if metrics.get("loss") is not None else ""),
    ]
    if found.get("profile"):
        profile = found["profile"]
        options = f" {json.dumps(profile['options'])}" if profile["options"] else ""
        lines.append(f"data profile {profile['name']}{options}: changed {profile['changed']} of {profile['examples']} examples")
    if not found["recorded"]:
        lines.append(f"trained before lineage was recorded: queue files {', '.join(run['queue_files']) or 'unknown'}")
    for batch in found["batches"]:
        gate = batch["gate"]
        lines += [
            f"batch {batch['batch_id']} ({batch['priority']}): {_source(batch['source'])}",
            f"  gate {gate.get('level')}, config {gate.get('config_hash') or 'not recorded'}, report {gate['report']}"
            f" (sha256 {(gate.get('report_sha256') or 'missing')[:12]}): {gate.get('recommendation')}",
            f"  {batch['records']} records, lines {_lines(batch['record_lines'])}"
            + (f"; {batch['unmatched']} not found in the batch any more" if batch["unmatched"] else ""),
        ]
    versions = [f"{v['dataset']} {v['version']}" for v in found["dataset_versions"]]
    lines.append(f"dataset versions holding these batches: {', '.join(versions) or 'none'}")
    lines.append(f"evaluation: {_evaluation(found['evaluation'])}")
    lines.append("deployments:")
    lines += _deployments(found["deployments"])
    return "\n".join(lines)


def _trained_on_text(found: dict[str, Any]) -> str:
    what = f"record {found['batch_id']}:{found['line']}" if found["line"] else f"batch {found['batch_id']}"
    if not found["checkpoints"]:
        return f"no checkpoint was trained on {what}"
    lines = [f"{len(found['checkpoints'])} checkpoint(s) trained on {what}; serving now: {', '.join(found['serving_now']) or 'none'}"]
    for checkpoint in found["checkpoints"]:
        lines.append(f"{checkpoint['checkpoint']}: {checkpoint['records_from_batch']} records of the batch; {_evaluation(checkpoint['evaluation'])}")
        lines += _deployments(checkpoint["deployments"])
    return "\n".join(lines)


@click.command()
@click.argument("checkpoint", required=False)
@click.option("--batch", "batch_id", help="List the checkpoints trained on batch ID.")
@click.option("--record", "record_id", metavar="BATCH:LINE", help="List the checkpoints trained on this record.")
@common.json_outcome
def lineage(checkpoint: str | None, batch_id: str | None, record_id: str | None, as_json: bool) -> None:
    """What CHECKPOINT (a training run, RUN/checkpoint-N, a path, or `deployed`) was trained
    on: its run, batches (source, gate, report), records, evaluation and deployments. With
    --batch or --record instead: the checkpoints trained on that batch or record. Exit 1
    when the checkpoint cannot be found."""
    from tdm_dagster.lineage.trace import LineageError, lineage_of, parse_record_id, trained_on

    if sum(x is not None for x in (checkpoint, batch_id, record_id)) != 1:
        raise click.UsageError("name one of: CHECKPOINT, --batch ID or --record BATCH:LINE")
    line = None
    if record_id is not None:
        try:
            batch_id, line = parse_record_id(record_id)
        except LineageError as error:
            raise click.BadParameter(str(error), param_hint="--record") from None
    home = common.home()
    if checkpoint is None:
        found = trained_on(home, batch_id, line)
        common.emit(found, as_json, _trained_on_text(found))
        return
    try:
        found = lineage_of(home, checkpoint)
    except LineageError as error:
        raise common.Refused(str(error), outcome={"checkpoint": checkpoint}) from None
    common.emit(found, as_json, _checkpoint_text(found))
