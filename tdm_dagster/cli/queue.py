"""``tdm recheck``: the queued files against today's gate, and the files it holds."""

from __future__ import annotations

import click

from tdm_dagster.cli import common


@click.group(invoke_without_command=True)
@click.option("--dry-run", is_flag=True, help="Report what would be trimmed or held; change nothing.")
@common.json_option
@click.pass_context
def recheck(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Re-check every queued file against today's gate (the recheck_quality job does this
    every 12 h); trims records and holds files that no longer pass."""
    if ctx.invoked_subcommand:
        return
    from tdm_dagster.queue.recheck import recheck_queue

    home = common.home()

    def progress(verdict) -> None:
        if not as_json:
            reasons = f": {'; '.join(verdict.reasons)}" if verdict.reasons else ""
            click.echo(f"{verdict.priority:>6}/{verdict.batch_id} ({verdict.records} records) {verdict.verdict}{reasons}", err=True)

    result = recheck_queue(home, common.config(home), apply=not dry_run, progress=progress)
    data = result.to_dict()
    totals = data["totals"]
    prefix = "dry run: would have " if dry_run else ""
    text = (f"{totals['files']} file(s), {totals['records']} records checked at level {result.level}: {prefix}"
            f"{totals['passed']} passed, {totals['trimmed']} trimmed ({totals['records_removed']} records), {totals['held']} held")  # fmt: skip
    common.emit(data, as_json, text)


@recheck.command("held")
@common.json_option
def recheck_held(as_json: bool) -> None:
    """Files the re-check holds back, with their reasons."""
    from tdm_dagster.queue.recheck import held_files

    rows = held_files(common.home())
    lines = [f"{r['priority']:>6}/{r['batch_id']}  held {r['held_at']}: {'; '.join(r['reasons'])}" for r in rows]
    common.emit(rows, as_json, "\n".join(lines) or "nothing is held")


@recheck.command("release")
@click.argument("batch_id")
def recheck_release(batch_id: str) -> None:
    """Put a held file back in the queue (you decided it is fine)."""
    from tdm_dagster.queue.recheck import release

    try:
        click.echo(f"released {batch_id} to {release(common.home(), batch_id)}")
    except (FileNotFoundError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
