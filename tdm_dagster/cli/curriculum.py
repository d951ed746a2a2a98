"""``tdm curriculum``: the active skill and the levels."""

from __future__ import annotations

import click

from tdm_dagster.cli import common


@click.group()
def curriculum() -> None:
    """The curriculum: active skill, level per skill, accuracy history."""


@curriculum.command("status")
@common.json_option
def curriculum_status(as_json: bool) -> None:
    """Show levels, recent accuracy and what it takes to advance."""
    from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path

    path = curriculum_path(common.home())
    try:
        state = CurriculumState.load(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    common.emit(state.to_dict(), as_json, state.format_status())


@curriculum.command("set-skill")
@click.argument("skill")
def curriculum_set_skill(skill: str) -> None:
    """Make SKILL the one generated next."""
    from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path

    path = curriculum_path(common.home())
    try:
        state = CurriculumState.load(path)
        state.set_active(skill)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    state.save(path)
    click.echo(f"active skill: {state.active_skill}")
