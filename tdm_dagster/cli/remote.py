"""``tdm datasets push/pull/remote`` and ``tdm checkpoints``: sharing data and checkpoints through S3 or GCS.

The remote is ``--remote`` or config ``storage.remote``; credentials come from the
environment only (see README, "Remote storage"). Progress goes to stderr, the summary to
stdout; a remote that cannot be used is a one-line error (exit 1), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import click

from tdm_dagster.cli.common import config, emit, home, json_option
from tdm_dagster.cli.datasets import DATASET_NAME, VERSION, _registry

remote_option = click.option("--remote", "url", metavar="URL", help="s3://bucket/prefix or gs://bucket/prefix (default: storage.remote).")


@contextmanager
def _remote(url: str | None, *, moving: bool = False) -> Iterator[Any]:
    """The remote to use; its errors become clean CLI errors (for a push or pull, ``moving``,
    saying that running it again goes on from where it stopped)."""
    from tdm_dagster.storage.remote import Remote, RemoteConflictError, RemoteCorruptError, RemoteError, check_remote_url

    storage = config(home()).storage
    url = url or storage.remote
    if not url:
        raise click.UsageError("no remote: pass --remote s3://bucket/prefix (or gs://...) or set storage.remote in config.yaml")
    if check_remote_url(url):
        raise click.BadParameter(f"{url!r}: expected {check_remote_url(url)}", param_hint="'--remote'")
    try:
        yield Remote(url, endpoint_url=storage.endpoint_url)
    except RemoteError as error:
        again = "" if not moving or isinstance(error, (RemoteConflictError, RemoteCorruptError)) else (
            "\nnothing half-done is visible; run the same command again to go on from where it stopped"
        )
        raise click.ClickException(f"{error}{again}") from error


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _summary(verb: str, transfer) -> str:
    moved = ", ".join(transfer.moved) or "nothing new"
    already = f"; already there: {', '.join(transfer.already)}" if transfer.already else ""
    direction = "sent" if verb == "pushed" else "received"
    return (
        f"{verb} {transfer.what} {moved} ({transfer.remote}){already}\n"
        f"{transfer.objects} object(s) {direction}, {transfer.bytes:,} bytes; {transfer.objects_present} already present; {transfer.seconds:.1f} s"
    )


# -- datasets ------------------------------------------------------------------------------------


@click.command()
@click.argument("name", type=DATASET_NAME)
@click.option("--version", type=VERSION, help="Only this version (default: every version).")
@remote_option
@json_option
def push(name: str, version: str | None, url: str | None, as_json: bool) -> None:
    """Send a dataset's versions to a remote; objects it holds already are not sent again."""
    from tdm_dagster.datasets.sync import push as push_dataset

    with _remote(url, moving=True) as remote:
        transfer = push_dataset(_registry(), remote, name, version, _progress)
    emit(asdict(transfer), as_json, _summary("pushed", transfer))


@click.command()
@click.argument("name", type=DATASET_NAME)
@click.option("--version", type=VERSION, help="Only this version (default: every version on the remote).")
@remote_option
@json_option
def pull(name: str, version: str | None, url: str | None, as_json: bool) -> None:
    """Receive a dataset's versions from a remote, each checked before it is committed."""
    from tdm_dagster.datasets.sync import pull as pull_dataset

    with _remote(url, moving=True) as remote:
        transfer = pull_dataset(_registry(), remote, name, version, _progress)
    emit(asdict(transfer), as_json, _summary("pulled", transfer))


@click.group("remote")
def dataset_remote() -> None:
    """What a remote holds."""


@dataset_remote.command("list")
@remote_option
@json_option
def list_remote_datasets(url: str | None, as_json: bool) -> None:
    """Every dataset on the remote with its complete versions."""
    from tdm_dagster.datasets.sync import remote_versions

    with _remote(url) as remote:
        found = remote_versions(remote)
    emit(found, as_json, "\n".join(f"{name:<24} {', '.join(versions)}" for name, versions in found.items()) or "no datasets on the remote")


# -- checkpoints ---------------------------------------------------------------------------------


@click.group()
def checkpoints() -> None:
    """Checkpoints on a remote: the trainer box pushes, the serving box pulls (and deploys)."""


@checkpoints.command("push")
@click.argument("run")
@click.option("--name", help="checkpoint-N (default: the run's latest).")
@remote_option
@json_option
def push_checkpoint(run: str, name: str | None, url: str | None, as_json: bool) -> None:
    """Send a training run's checkpoint (RUN: its partition key) to a remote."""
    from tdm_dagster.storage.checkpoints import push_checkpoint as push_one

    with _remote(url, moving=True) as remote:
        transfer = push_one(home(), remote, run, name, _progress)
    emit(asdict(transfer), as_json, _summary("pushed", transfer))


@checkpoints.command("pull")
@click.argument("run", required=False)
@click.option("--name", help="checkpoint-N (default: the run's latest on the remote).")
@click.option("--deployed", is_flag=True, help="The checkpoint the trainer box deployed last; deploy it here too.")
@click.option("--force", is_flag=True, help="With --deployed: deploy even if it scores below the one deployed here.")
@remote_option
@json_option
def pull_checkpoint(run: str | None, name: str | None, deployed: bool, force: bool, url: str | None, as_json: bool) -> None:
    """Receive a checkpoint into $TDM_HOME/training/RUN/checkpoints/ (complete or not at all)."""
    from tdm_dagster.storage.checkpoints import deployed as deployed_on, pull_checkpoint as pull_one

    if bool(run) == deployed:
        raise click.UsageError("give RUN (and optionally --name), or --deployed")
    with _remote(url, moving=True) as remote:
        target = deployed_on(remote) if deployed else {"run": run, "name": name}
        if target is None:
            raise click.ClickException(f"{remote.url}: nothing deployed there yet (deployments/current.json is missing)")
        info, transfer = pull_one(home(), remote, target["run"], target["name"], _progress)
    data: dict[str, Any] = {**asdict(transfer), "path": str(info.path)}
    text = _summary("pulled", transfer) + f"\n{info.path}"
    if deployed:
        from tdm_dagster.serving.deploy import deploy, reachable

        serving = config(home()).serving
        result = deploy(info.path, home().serving_dir, score=target.get("score"), server_url=reachable(f"http://{serving.host}:{serving.port}"), force=force)
        data["deploy"] = result.to_dict()
        text += f"\ndeploy: {result.reason}"
        if not result.deployed:
            emit(data, as_json, text)
            raise SystemExit(1)
    emit(data, as_json, text)


@checkpoints.group("remote")
def checkpoint_remote() -> None:
    """What a remote holds."""


@checkpoint_remote.command("list")
@remote_option
@json_option
def list_remote_checkpoints(url: str | None, as_json: bool) -> None:
    """Every training run on the remote with its complete checkpoints, and what is deployed."""
    from tdm_dagster.storage.checkpoints import deployed, remote_checkpoints

    with _remote(url) as remote:
        found, current = remote_checkpoints(remote), deployed(remote)
    lines = [f"{run:<32} {', '.join(names)}" for run, names in found.items()] or ["no checkpoints on the remote"]
    if current:
        lines.append(f"deployed: {current['run']}/{current['name']} (score {current.get('score')})")
    emit({"checkpoints": found, "deployed": current}, as_json, "\n".join(lines))
