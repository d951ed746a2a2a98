"""checkpoint -> checkpoint_evaluation -> deployed_model: the train, compare, deploy half.

One dynamic partition per checkpoint. ``checkpoint`` claims queue files (priority order,
atomically), trains, and writes the checkpoint atomically; its lineage runs from the
queued batches. ``checkpoint_evaluation`` scores it on held-out skill sets, records the
history, moves the curriculum and sends failed cases back to the inbox as corrections.
``deployed_model`` deploys the best evaluated checkpoint to the serving folder.
"""

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import dagster as dg

from tdm_dagster.assets.queue import queued_batch
from tdm_dagster.lineage.capture import count
from tdm_dagster.progress import SteadyLog
from tdm_dagster.resources import TdmHomeResource, TrainerResource
from tdm_dagster.runs.boxes import INFERENCE, TRAINING, on_box

checkpoint_partitions = dg.DynamicPartitionsDefinition(name="checkpoints")


class CheckpointConfig(dg.Config):
    profile: str = ""
    """The data profile to apply before training (``emoji_think``, ``regime3``, a registered
    name or ``module:function``); empty: config's ``profile.name``."""


@dg.asset(
    partitions_def=checkpoint_partitions,
    group_name="train",
    kinds={"pytorch"},
    op_tags=on_box(TRAINING),
    deps=[queued_batch],
    description="A fine-tuned checkpoint trained on the queue (high, then normal, then low; oldest first).",
)
def checkpoint(context: dg.AssetExecutionContext, config: CheckpointConfig, tdm: TdmHomeResource, trainer: TrainerResource) -> dg.MaterializeResult:
    home = tdm.home()
    settings = tdm.config().training
    profile = tdm.config().profile
    if config.profile:
        profile = replace(profile, name=config.profile)

    steps = SteadyLog(context.log.info, "steps")  # a line every few seconds, with the loss

    def progress(step: int, total: int, loss: float) -> None:
        steps.reached(step, total, f"loss {loss:.4f}")

    trained = trainer.train_from_queue(home, settings, home.training_dir / context.partition_key, progress=progress, profile=profile)
    steps.finish()
    if trained is None:
        raise dg.Failure("the training queue is empty: nothing to train on")
    result, archived = trained
    from tdm_dagster.queue.claims import MANIFEST_FILE

    sources = json.loads((archived / MANIFEST_FILE).read_text())
    pushed = _publish(context, tdm, context.partition_key, result.checkpoint_path)
    return dg.MaterializeResult(
        metadata={
            **pushed,
            **_lineage_metadata(sources.get("lineage") or {}),
            "path": dg.MetadataValue.path(str(result.checkpoint_path)),
            "steps": dg.MetadataValue.int(result.steps),
            "examples": dg.MetadataValue.int(result.examples),
            "first_loss": dg.MetadataValue.float(result.loss_curve[0]),
            "final_loss": dg.MetadataValue.float(result.loss_curve[-1]),
            "loss_curve": dg.MetadataValue.json([round(x, 4) for x in result.loss_curve]),
            "real_tokens_per_s": dg.MetadataValue.float(round(result.tokens_per_s, 1)),
            "device": result.device,
            "profile": ((sources.get("lineage") or {}).get("profile") or {}).get("name") or "none",
            "queue_files": dg.MetadataValue.json([f"{f['priority']}/{f['name']}" for f in sources["files"]]),
            "archived": dg.MetadataValue.path(str(archived)),
        }
    )


def checkpoint_path(home, partition_key: str) -> Path:
    from tdm_dagster.training.checkpoints import latest

    found = latest(home.training_dir / partition_key)
    if found is None:
        raise dg.Failure(f"no checkpoint was written for {partition_key}: materialize checkpoint first")
    return found.path


@dg.asset(
    partitions_def=checkpoint_partitions,
    group_name="compare",
    kinds={"pytorch"},
    op_tags=on_box(TRAINING),
    deps=[checkpoint],
    description="Exact-answer accuracy per skill and level on held-out sets, held-out loss, trends; updates the curriculum.",
)
def checkpoint_evaluation(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.evaluate.checkpoint import evaluate_checkpoint
    from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
    from tdm_dagster.evaluate.comparison import held_out_sets, probe_sets, record
    from tdm_dagster.evaluate.isolation import register_held_out, seen_in_training

    home = tdm.home()
    settings = tdm.config().training
    state = CurriculumState.load(curriculum_path(home))
    levels = {skill: [state.level_of(skill)] for skill in ("syllo", "binary")}
    path = checkpoint_path(home, context.partition_key)
    sets = held_out_sets(levels, settings.eval_per_level)
    register_held_out(home, sets)  # from now on the deep gate keeps these items out of training
    probes = probe_sets(sets, max(1, settings.eval_per_level // 2))
    answered = SteadyLog(context.log.info, "answered", sum(len(held.examples) for held in (*sets, *probes)))
    result = replace(evaluate_checkpoint(path, sets, settings.max_length, probes=probes, progress=answered), seen_in_training=seen_in_training(home, sets))
    answered.finish()
    entry = record(home, result)
    context.log.info(f"{context.partition_key}: accuracy {result.overall_accuracy:.2%}, loss {result.held_out_loss:.4f}")
    if result.seen_in_training:
        context.log.warning(f"{result.seen_in_training} held-out item(s) were found in training data: accuracy partly measures memory")
    return dg.MaterializeResult(
        metadata={
            "overall_accuracy": dg.MetadataValue.float(result.overall_accuracy),
            "held_out_loss": dg.MetadataValue.float(result.held_out_loss),
            **{f"accuracy_{skill}": dg.MetadataValue.float(acc) for skill, acc in entry["skills"].items()},
            "trend": dg.MetadataValue.json(entry["trend"]),
            "advanced": dg.MetadataValue.json(entry["advanced"]),
            "corrections": dg.MetadataValue.int(entry["failed_cases"]),
            "held_out_seen_in_training": dg.MetadataValue.int(result.seen_in_training),
            "checkpoint": str(path),
        }
    )


DEPLOYMENT_LIVE = "deployment_live"
"""The blocking check on ``deployed_model`` that fails a run whose deployment was refused or failed."""


class DeployConfig(dg.Config):
    force: bool = False
    """Deploy without comparing scores: the checkpoint named, else the newest evaluated
    one (not the best)."""
    checkpoint: str = ""
    """The checkpoint to deploy (its key, as ``tdm evaluate`` names it, or its path);
    empty: the best evaluated one (the newest with ``force``)."""


@dg.asset(
    group_name="deploy",
    kinds={"fastapi"},
    op_tags=on_box(INFERENCE),
    deps=[checkpoint_evaluation],
    description="The best evaluated checkpoint (or the one named), deployed atomically to the serving folder (never a worse one unless forced).",
    check_specs=[dg.AssetCheckSpec(DEPLOYMENT_LIVE, asset="deployed_model", blocking=True, description=(
        "Fails (ERROR, blocking) when a deployment was refused or failed (verification failed and it switched "
        "back, the server refused the admin token, the copy failed): the run fails, so `dagster job execute` "
        "exits non-zero and the check-failure alert fires. A declined deployment (the candidate scores lower) passes with a WARN-free note."
    ))],
)
def deployed_model(context: dg.AssetExecutionContext, config: DeployConfig, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.evaluate.comparison import load_history
    from tdm_dagster.serving.choice import choose_checkpoint
    from tdm_dagster.serving.deploy import deploy
    from tdm_dagster.serving.remote import RemoteHostError, remote_target
    from tdm_dagster.serving.verify import reachable

    home = tdm.home()
    chosen = choose_checkpoint(load_history(home), config.checkpoint or None, newest=config.force, training_dir=home.training_dir)
    if isinstance(chosen, str):
        raise dg.Failure(chosen)
    settings = tdm.config().serving
    try:
        remote = remote_target(settings.remote_host, settings.ssh_config)
    except RemoteHostError as exc:
        raise dg.Failure(str(exc)) from None
    server = f"http://{settings.host}:{settings.port}"
    result = deploy(
        chosen["checkpoint"], home.serving_dir, score=chosen["score"], server_url=reachable(server),
        force=config.force, remote=remote,
    )  # fmt: skip
    context.log.info(f"deploy {chosen['checkpoint']}: {result.reason}")
    path = Path(chosen["checkpoint"])
    pushed = _publish(context, tdm, path.parent.parent.name, path, deployed_score=chosen["score"]) if result.deployed else {}
    trained_on = _recorded_lineage(path)
    return dg.MaterializeResult(
        metadata={
            **pushed,
            "trained_checkpoint": dg.MetadataValue.md(f"[{path.parent.parent.name}]({_asset_url('checkpoint', path.parent.parent.name)})"),
            **_lineage_metadata(trained_on),
            "checkpoint": chosen["checkpoint"],
            "score": dg.MetadataValue.float(chosen["score"]) if chosen["score"] is not None else "none",
            "deployed": dg.MetadataValue.bool(result.deployed),
            "outcome": result.outcome,
            "reason": result.reason,
            "latency_s": dg.MetadataValue.float(round(result.latency_s, 3)),
            "previous": result.previous or "",
            "name": result.name or "",
        },
        check_results=[_deployment_live(result)],
    )


def _asset_url(asset: str, partition: str) -> str:
    """The Dagster UI's page of one partition of ``asset`` (a link inside the UI)."""
    return f"/assets/{asset}?view=partitions&partition={quote(partition)}"


def _recorded_lineage(checkpoint: Path) -> dict:
    """The lineage the trainer wrote into the checkpoint; empty for one without it (trained
    elsewhere, or before lineage was recorded): a deploy never fails for want of it."""
    from tdm_dagster.training.checkpoints import read_meta

    try:
        return (read_meta(checkpoint).get("sources") or {}).get("lineage") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def _lineage_metadata(lineage: dict) -> dict:
    """What the checkpoint was trained on, as metadata: each batch a link to its
    ``queued_batch`` partition with its source, gate and record count (``tdm lineage``
    shows the records)."""
    batches = lineage.get("batches") or []
    if not batches:
        return {}
    rows = [
        f"| [{b['batch_id']}]({_asset_url('queued_batch', b['batch_id'])}) | {b['source'].get('kind')} | "
        f"{b['gate'].get('level')} | {b['gate'].get('config_hash') or '-'} | {count(b['record_lines'])} |"
        for b in batches
    ]
    table = "| batch | source | gate | config | records |\n|---|---|---|---|---|\n" + "\n".join(rows)
    return {
        "trained_on_batches": dg.MetadataValue.md(table),
        "trained_on_batch_ids": dg.MetadataValue.json([b["batch_id"] for b in batches]),
        "trained_on_records": dg.MetadataValue.int(sum(count(b["record_lines"]) for b in batches)),
    }


def _deployment_live(result) -> dg.AssetCheckResult:
    """Passed unless the deployment was refused or failed: what serves is then not what was
    asked for, which is an alert (a declined one is routine: the better model keeps serving)."""
    return dg.AssetCheckResult(
        check_name=DEPLOYMENT_LIVE,
        passed=result.outcome in {"deployed", "declined"},
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"outcome": result.outcome, "reason": result.reason},
    )


def _publish(context: dg.AssetExecutionContext, tdm: TdmHomeResource, run: str, path: Path, **deployed: float) -> dict:
    """With ``storage.push_checkpoints``: the checkpoint goes to the remote (and, from the
    deploy, is named the deployed one there). A remote that fails is a warning, not a
    failed asset: the checkpoint is safe here and ``tdm checkpoints push`` sends it later."""
    storage = tdm.config().storage
    if not storage.push_checkpoints:
        return {}
    from tdm_dagster.storage.checkpoints import publish
    from tdm_dagster.storage.remote import RemoteError

    try:
        line = publish(tdm.home(), storage, run, path.name, **deployed, deploying=bool(deployed))
    except RemoteError as error:
        context.log.warning(f"checkpoint {run}/{path.name} not pushed: {error}")
        return {"remote": f"not pushed: {error}"}
    context.log.info(line)
    return {"remote": line}
