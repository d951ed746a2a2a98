"""``tdm datasets push/pull/remote`` and ``tdm checkpoints``: sharing data and checkpoints through S3 or GCS.

The remote is ``--remote`` or config ``storage.remote``; credentials come from the
environment only (see docs/guides/remote-storage.md). Progress, in bytes, is a bar on stderr
when it is a terminal; the summary goes to stdout; a remote that cannot be used is a
one-line error (exit 1), never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
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
    from tdm_dagster.http.retry import mask_credentials
    from tdm_dagster.storage.remote import Remote, RemoteConflictError, RemoteCorruptError, RemoteError, check_remote_url

    if url and check_remote_url(url):
        raise click.BadParameter(f"{mask_credentials(repr(url))}: expected {check_remote_url(url)}", param_hint="'--remote'")
    storage = config(home()).storage  # storage.remote is checked as the config loads
    url = url or storage.remote
    if not url:
        raise click.UsageError("no remote: pass --remote s3://bucket/prefix (or gs://...) or set storage.remote in config.yaml")
    try:
        yield Remote(url, endpoint_url=storage.endpoint_url)
    except RemoteError as error:
        again = "" if not moving or isinstance(error, (RemoteConflictError, RemoteCorruptError)) else (
            "\nnothing half-done is visible; run the same command again to go on from where it stopped"
        )
        raise click.ClickException(f"{error}{again}") from error


def _bars(as_json: bool):
    """Byte bars on stderr when it is a terminal (none under ``--json``)."""
    from tdm_dagster.progress import terminal_progress

    return functools.partial(terminal_progress, quiet=as_json)


def _summary(verb: str, transfer) -> str:
    moved = ", ".join(transfer.moved) or "nothing new"
    already = f"; already there: {', '.join(transfer.already)}" if transfer.already else ""
    direction = "sent" if verb == "pushed" else "received"
    return (
        f"{verb} {transfer.what} {moved} ({transfer.remote}){already}\n"
        f"{transfer.objects} object(s) {direction}, {transfer.bytes:,} bytes; {transfer.objects_present} already present; {transfer.seconds:.1f} s"
    )


# -- datasets ------------------------------------------------------------------------------------


def _dataset_transfer(verb: str, which: str, doc: str) -> click.Command:
    """``tdm datasets push`` or ``pull`` (``verb``): :mod:`tdm_dagster.datasets.sync` does the work."""

    @click.command(verb, help=doc)
    @click.argument("name", type=DATASET_NAME)
    @click.option("--version", type=VERSION, help=f"Only this version (default: {which}).")
    @remote_option
    @json_option
    def transfer_command(name: str, version: str | None, url: str | None, as_json: bool) -> None:
        from tdm_dagster.datasets import sync

        with _remote(url, moving=True) as remote:
            transfer = getattr(sync, verb)(_registry(), remote, name, version, _bars(as_json))
        emit(asdict(transfer), as_json, _summary(f"{verb}ed", transfer))

    return transfer_command


push = _dataset_transfer("push", "every version", "Send a dataset's versions to a remote; objects it holds already are not sent again.")
pull = _dataset_transfer("pull", "every version on the remote", "Receive a dataset's versions from a remote, each checked before it is committed.")


def _remote_group(listing: Callable[[Any], tuple[Any, list[str]]], what: str) -> click.Group:
    """``remote list``: what ``listing(remote)`` finds, as (data for --json, lines of text)."""

    @click.group("remote")
    def group() -> None:
        """What a remote holds."""

    @group.command("list", help=f"Every {what} on the remote.")
    @remote_option
    @json_option
    def list_remote(url: str | None, as_json: bool) -> None:
        with _remote(url) as remote:
            data, lines = listing(remote)
        emit(data, as_json, "\n".join(lines))

    return group


def _datasets_on(remote) -> tuple[Any, list[str]]:
    from tdm_dagster.datasets.sync import remote_versions

    found = remote_versions(remote)
    return found, [f"{name:<24} {', '.join(versions)}" for name, versions in found.items()] or ["no datasets on the remote"]


dataset_remote = _remote_group(_datasets_on, "dataset with its complete versions")


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
        transfer = push_one(home(), remote, run, name, _bars(as_json))
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
        info, transfer = pull_one(home(), remote, target["run"], target["name"], _bars(as_json))
    data: dict[str, Any] = {**asdict(transfer), "path": str(info.path)}
    text = _summary("pulled", transfer) + f"\n{info.path}"
    if deployed:
        from tdm_dagster.serving.deploy import deploy
        from tdm_dagster.serving.verify import reachable

        serving = config(home()).serving
        result = deploy(info.path, home().serving_dir, score=target.get("score"), server_url=reachable(f"http://{serving.host}:{serving.port}"), force=force)
        data["deploy"] = result.to_dict()
        text += f"\ndeploy: {result.reason}"
        if not result.deployed:
            from tdm_dagster.cli.deploy import exit_status

            emit(data, as_json, text)
            raise SystemExit(exit_status(result.outcome))  # as `tdm deploy`: 3 declined, 1 refused or failed
    emit(data, as_json, text)


def _checkpoints_on(remote) -> tuple[Any, list[str]]:
    from tdm_dagster.storage.checkpoints import deployed, remote_checkpoints

    found, current = remote_checkpoints(remote), deployed(remote)
    lines = [f"{run:<32} {', '.join(names)}" for run, names in found.items()] or ["no checkpoints on the remote"]
    if current:
        lines.append(f"deployed: {current['run']}/{current['name']} (score {current.get('score')})")
    return {"checkpoints": found, "deployed": current}, lines


checkpoints.add_command(_remote_group(_checkpoints_on, "training run with its complete checkpoints, and what is deployed"))
