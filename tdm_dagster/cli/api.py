"""``tdm api``: run the REST service; ``tdm api keys``: create, list and revoke its keys."""

from __future__ import annotations

import click

from tdm_dagster.api.keys import SCOPES
from tdm_dagster.cli import common


@click.group(invoke_without_command=True)
@click.option("--host", help="Address to listen on (default: api.host, 127.0.0.1). Anything else opens the data to a network.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: api.port, 8770).")
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None) -> None:
    """The data manager as a REST service: datasets, validate (a warm gate), stats, queue,
    /healthz, /readyz, /metrics; OpenAPI docs at /docs."""
    if ctx.invoked_subcommand:
        return
    from tdm_dagster.api.app import serve

    home = common.home()
    config = common.config(home)
    if not home.api_keys_file.exists():
        click.echo("no API keys yet: every data route answers 401 until `tdm api keys create --scope read --name NAME`", err=True)
    click.echo(f"tdm api on http://{host or config.api.host}:{port or config.api.port} (docs at /docs), state in {home.root}", err=True)
    serve(home, config, host, port)


class _KeyCommands(click.Group):
    """Every ``tdm api keys`` command: an unreadable key store is one line, not a traceback."""

    def invoke(self, ctx: click.Context):
        from tdm_dagster.api.keys import KeyStoreUnreadable

        try:
            return super().invoke(ctx)
        except KeyStoreUnreadable as exc:
            raise click.ClickException(f"{common.home().api_keys_file}: {exc}") from None


@api.group(cls=_KeyCommands)
def keys() -> None:
    """API keys: shown once at creation, stored as sha256 hashes."""


def _store():
    from tdm_dagster.api.keys import KeyStore

    return KeyStore(common.home())


@keys.command("create")
@click.option("--name", required=True, help="A name for the key (who or what uses it), e.g. ci.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="Repeatable. read, write (import), delete, admin (keys; and everything).")
@common.json_option
def keys_create(name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a key and print it: this is the only time it is shown."""
    from tdm_dagster.api.keys import ApiKeyError

    try:
        key, token = _store().create(name, scopes)
    except ApiKeyError as exc:
        raise click.UsageError(str(exc)) from exc
    common.emit({**key.public(), "key": token}, as_json,
                f"{token}\nkey {key.name!r} ({', '.join(key.scopes)}) created; it is shown only now, store it safely")  # fmt: skip


@keys.command("list")
@common.json_option
def keys_list(as_json: bool) -> None:
    """Every key's name, scopes and creation time (never the key)."""
    found = [key.public() for key in _store().list()]
    lines = [f"{k['name']:<24} {','.join(k['scopes']):<24} created {k['created_at']}" for k in found]
    common.emit(found, as_json, "\n".join(lines) or "no keys yet")


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke a key: a running service refuses it from its next request."""
    try:
        click.echo(f"revoked key {_store().revoke(name).name!r}")
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
