"""``tdm train`` and ``tdm evaluate``: one checkpoint step each, through Dagster (``tdm deploy``: :mod:`tdm_dagster.cli.deploy`)."""

from __future__ import annotations

import click

from tdm_dagster.cli import common


@click.command()
@click.option("--profile", help="Data profile to apply before training (emoji_think, regime3, yours); default: config's profile.name.")
@common.json_option
def train(profile: str | None, as_json: bool) -> None:
    """Train a new checkpoint on the queue (asset checkpoint, through Dagster)."""
    from tdm_dagster.assets.train import checkpoint
    from tdm_dagster.jobs import TRAINING_PIPELINE, add_checkpoint, train_run_config

    if profile:
        from tdm_dagster.training.profiles import ProfileError, find_profile

        try:
            find_profile(profile)
        except ProfileError as error:
            raise click.BadParameter(str(error), param_hint="--profile") from error
    instance = common.instance()
    key = add_checkpoint(instance)
    result = common.run(TRAINING_PIPELINE, dagster_instance=instance, partition_key=key, asset_selection=[checkpoint.key],
                        run_config=train_run_config(profile))  # fmt: skip
    common.finish(result, checkpoint, as_json, lambda d: f"{key}: {d['steps']} steps, loss {d['first_loss']:.3f} -> {d['final_loss']:.3f}, {d['path']}",
                  key=key)  # fmt: skip


@click.command()
@click.argument("key", required=False)
@common.json_outcome
def evaluate(key: str | None, as_json: bool) -> None:
    """Evaluate checkpoint KEY (default: the newest) on held-out skill sets. Exit 1 if there
    is no checkpoint yet or the evaluation failed, 2 if there is no checkpoint KEY."""
    from tdm_dagster.assets.train import checkpoint_evaluation, checkpoint_partitions
    from tdm_dagster.jobs import TRAINING_PIPELINE

    instance = common.instance()
    keys = sorted(instance.get_dynamic_partitions(checkpoint_partitions.name))
    if not keys:
        raise common.Refused("no checkpoint yet: run `tdm train` first", outcome={"success": False, "key": key})
    if key is not None and key not in keys:
        raise click.BadParameter(f"no checkpoint named {key!r} (the newest is {keys[-1]})", param_hint="KEY")
    key = key or keys[-1]
    result = common.run(TRAINING_PIPELINE, dagster_instance=instance, partition_key=key, asset_selection=[checkpoint_evaluation.key])
    common.finish(result, checkpoint_evaluation, as_json, lambda d: f"{key}: accuracy {d['overall_accuracy']:.1%}, held-out loss {d['held_out_loss']:.4f}",
                  key=key)  # fmt: skip
