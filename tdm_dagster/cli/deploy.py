"""``tdm deploy`` (a checkpoint, through Dagster; or ``--rollback`` to an earlier
deployment) and ``tdm deployments`` (the deployment history)."""

from __future__ import annotations

import sys
from typing import Any

import click

from tdm_dagster.cli import common

PREVIOUS = ""
"""``--rollback`` given without an id: the deployment before the current."""
EXIT_DECLINED = 3
"""``tdm deploy``'s exit status when the score comparison declined the candidate (it
scores lower than the deployed checkpoint, or has no score while that one has): nothing
changed and nothing is broken, the routine result of a cron job that deploys after every
training run. 0 would hide that no new model went live; 1 would alert on a routine
result; so a code of its own (``tdm deploy || [ $? -eq 3 ]``)."""


def exit_status(outcome: str | None) -> int:
    """0 when the deployment ends serving (deployed, rolled back), ``EXIT_DECLINED`` when
    the score comparison declined it, else 1 (refused, failed, switched back)."""
    if outcome in {"deployed", "rollback"}:
        return 0
    return EXIT_DECLINED if outcome == "declined" else 1


@click.command()
@click.argument("checkpoint", required=False)
@click.option("--force", is_flag=True,
              help="Deploy CHECKPOINT (default: the newest evaluated) without comparing scores.")
@click.option("--rollback", "rollback_to", is_flag=False, flag_value=PREVIOUS, default=None, metavar="[ID]",
              help="Switch back to the previous deployment, or to deployment ID (see `tdm deployments`).")
@common.json_option
def deploy(checkpoint: str | None, force: bool, rollback_to: str | None, as_json: bool) -> None:
    """Deploy the best evaluated checkpoint (or CHECKPOINT: a key or a path) to the
    serving folder (asset deployed_model); a lower-scoring one only with --force."""
    if rollback_to is not None:
        if checkpoint or force:
            raise click.UsageError("--rollback takes no CHECKPOINT and no --force")
        _rollback(rollback_to or None, as_json)
        return
    from tdm_dagster.assets.train import deployed_model
    from tdm_dagster.jobs import DEPLOY_BEST, deploy_run_config

    result = common.run(DEPLOY_BEST, run_config=deploy_run_config(force, checkpoint))
    data = common.step_metadata(result, deployed_model)
    if not data:  # the deployment never got as far as an outcome (no such checkpoint, a bad remote_host)
        common.finish(result, deployed_model, as_json, str, deployed=False, outcome="failed", checkpoint=checkpoint)
    # a refused or failed deployment also fails the run (its blocking check deployment_live):
    # the outcome it recorded is the answer. The asset's reasons say "use force" (its
    # run-config field); here the flag is --force.
    reason = data["reason"].replace("use force", "use --force")
    common.emit(data, as_json, f"{data['checkpoint']}: {reason} ({data['latency_s']} s)")
    sys.exit(exit_status(data.get("outcome")))


def _targets() -> tuple[Any, Any, str]:
    """The home, the remote target (None: this machine) and the server URL to verify."""
    from tdm_dagster.serving.remote import RemoteHostError, remote_target

    home = common.home()
    settings = common.config(home).serving
    try:
        remote = remote_target(settings.remote_host, settings.ssh_config)
    except RemoteHostError as exc:
        raise common.ConfigProblem(str(exc)) from None
    return home, remote, f"http://{settings.host}:{settings.port}"


def _rollback(target: str | None, as_json: bool) -> None:
    from tdm_dagster.serving.deploy import rollback
    from tdm_dagster.serving.verify import reachable

    home, remote, server = _targets()
    result = rollback(home.serving_dir, reachable(server), target=target, remote=remote)
    if as_json:
        common.emit(result.to_dict(), True, "")
    elif result.deployed:
        click.echo(f"{result.reason} ({result.latency_s} s)")
    if not result.deployed:
        raise click.ClickException(f"rollback: {result.reason}")


@click.command()
@common.json_option
def deployments(as_json: bool) -> None:
    """Deployment history: id, checkpoint, when, score, latency; * marks the current one."""
    from tdm_dagster.serving.deploy import current_deployment
    from tdm_dagster.serving.history import load_deployments, other_targets

    home, remote, _ = _targets()
    state = load_deployments(home.serving_dir, remote)
    current = (state["active"][-1] if state["active"] else None) if remote else current_deployment(home.serving_dir)
    rows = deployment_rows(state["history"], current)
    others = other_targets(home.serving_dir, remote)
    if as_json:
        common.emit({"current": current, "remote_host": str(remote) if remote else None, "deployments": rows,
                     "other_targets": others}, True, "")  # fmt: skip
        return
    also = f" (other targets with a history: {', '.join(others)})" if others else ""
    if not rows:
        click.echo(f"no deployments yet{' on ' + str(remote) if remote else ''}: run `tdm deploy`{also}")
        return
    header = ("", "id", "outcome", "checkpoint", "when", "score", "latency_s")
    table = [header] + [("*" if r["current"] else "", r["id"] or "-", r["outcome"], r["checkpoint"] or "-", r["time"],
                         "-" if r["score"] is None else f"{r['score']:g}", f"{r['latency_s']:.3f}") for r in rows]  # fmt: skip
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    click.echo(f"current: {current or 'none'}" + (f" on {remote}" if remote else "") + also)


def deployment_rows(history: list[dict[str, Any]], current: str | None) -> list[dict[str, Any]]:
    """One row per attempt, oldest first; ``current`` marks the attempt that made the
    current deployment current (its last successful deploy or rollback)."""
    rows = [{"id": e.get("name"), "outcome": e.get("outcome"), "checkpoint": e.get("checkpoint"), "time": e.get("time"),
             "score": e.get("score"), "latency_s": e.get("latency_s") or 0.0, "reason": e.get("reason"),
             "current": False} for e in history]  # fmt: skip
    for row in reversed(rows):
        if row["id"] == current and row["outcome"] in {"deployed", "rollback"}:
            row["current"] = True
            break
    return rows
