"""``tdm train``, ``tdm evaluate`` and ``tdm deploy``: one checkpoint step each, through Dagster."""

from __future__ import annotations

import click

from tdm_dagster.cli import common


@click.command()
@common.json_option
def train(as_json: bool) -> None:
    """Train a new checkpoint on the queue (asset checkpoint, through Dagster)."""
    from tdm_dagster.assets.train import checkpoint
    from tdm_dagster.jobs import TRAINING_PIPELINE, add_checkpoint

    instance = common.instance()
    key = add_checkpoint(instance)
    result = common.run(TRAINING_PIPELINE, dagster_instance=instance, partition_key=key, asset_selection=[checkpoint.key])
    common.finish(result, checkpoint, as_json, lambda d: f"{key}: {d['steps']} steps, loss {d['first_loss']:.3f} -> {d['final_loss']:.3f}, {d['path']}")


@click.command()
@click.argument("key", required=False)
@common.json_option
def evaluate(key: str | None, as_json: bool) -> None:
    """Evaluate checkpoint KEY (default: the newest) on held-out skill sets."""
    from tdm_dagster.assets.train import checkpoint_evaluation, checkpoint_partitions
    from tdm_dagster.jobs import TRAINING_PIPELINE

    instance = common.instance()
    keys = instance.get_dynamic_partitions(checkpoint_partitions.name)
    if not keys:
        raise click.ClickException("no checkpoint yet: run `tdm train` first")
    key = key or sorted(keys)[-1]
    result = common.run(TRAINING_PIPELINE, dagster_instance=instance, partition_key=key, asset_selection=[checkpoint_evaluation.key])
    common.finish(result, checkpoint_evaluation, as_json, lambda d: f"{key}: accuracy {d['overall_accuracy']:.1%}, held-out loss {d['held_out_loss']:.4f}")


@click.command()
@click.option("--force", is_flag=True, help="Deploy even if it scores below the deployed checkpoint.")
@common.json_option
def deploy(force: bool, as_json: bool) -> None:
    """Deploy the best evaluated checkpoint to the serving folder (asset deployed_model)."""
    from tdm_dagster.assets.train import deployed_model
    from tdm_dagster.jobs import DEPLOY_BEST, deploy_run_config

    result = common.run(DEPLOY_BEST, run_config=deploy_run_config(force))
    # the asset's reasons say "use force" (its run-config field); here the flag is --force
    common.finish(result, deployed_model, as_json, lambda d: f"{d['checkpoint']}: {d['reason'].replace('use force', 'use --force')} ({d['latency_s']} s)")
