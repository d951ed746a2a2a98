"""``tdm generate``, ``tdm ingest`` and ``tdm validate``: a batch made, files taken in, a file checked."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from tdm_dagster.cli import common
from tdm_dagster.cli.bounded import ConfigBounded
from tdm_dagster.home import PRIORITIES, TdmHome


@click.command()
@click.option("--force", is_flag=True, help="Generate even if disabled, in cooldown or the queue is full.")
@click.option("--count", type=ConfigBounded("auto_generate.count"), help="Examples to generate (default: auto_generate.count).")
@click.option("--seed", type=ConfigBounded("auto_generate.seed"), help="Seed, for a reproducible batch.")
@click.option("--skill", help="Skill to generate (default: config, then the curriculum's active skill).")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Queue priority (default: auto_generate.priority).")
@common.json_outcome
def generate(force: bool, count: int | None, seed: int | None, skill: str | None, priority: str | None, as_json: bool) -> None:
    """Run generate_and_queue once through Dagster: generate, test, queue. Exit 1 if the
    batch was not queued (rejected, or its run failed); 0 also when not generating."""
    from tdm_dagster.generate.planning import decide_trigger, last_generation
    from tdm_dagster.queue.store import TrainingQueue

    home = common.home()
    settings = common.config(home).auto_generate
    instance = common.instance()
    if not force:
        from tdm_dagster.sensors.queue_low import runs_in_flight

        last = (last_generation(home) or {}).get("started_at")
        decision = decide_trigger(settings, TrainingQueue(home).total_depth(), last, time.time(), runs_in_flight(instance))
        if not decision.generate:
            common.emit({"ran": False, "reason": decision.reason}, as_json, f"not generating: {decision.reason} (use --force to override)")
            return
    from tdm_dagster.jobs import GENERATE_AND_QUEUE, generate_run_config

    overrides = {"count": count, "seed": seed, "skill": skill, "priority": priority}
    click.echo(f"running {GENERATE_AND_QUEUE} (state in {home.root})", err=True)
    result = common.run(GENERATE_AND_QUEUE, dagster_instance=instance, run_config=generate_run_config(overrides))
    outcome = batch_outcome(home, result)
    codes = ", ".join(f"{code} {count}" for code, count in outcome.get("rejected_by_code", {}).items())
    text = (
        f"batch {outcome['batch_id']}: {outcome['recommendation']}\n"
        f"  generated {outcome.get('generated', 0)}, approved {outcome.get('approved', 0)}, rejected {outcome.get('rejected', 0)}"
        + (f"\n  rejected records by reason: {codes}" if codes else "")
        + (f"\n  queued: {outcome['queue_file']}" if outcome.get("queue_file") else "")
        + (f"\n  report: {outcome['report']}" if outcome.get("report") else "")
        + (f"\n  rejected records: {outcome['rejected_file']}" if outcome.get("rejected_file") else "")
    )
    common.emit(outcome, as_json, text)
    if not result.success:
        sys.exit(1)


def batch_outcome(home: TdmHome, result) -> dict[str, Any]:
    """What a ``generate_and_queue`` run did: its batch, the gate's verdict and counts,
    where the report and the queued and rejected records are, or why it failed."""
    from tdm_dagster.generate.planning import last_generation
    from tdm_dagster.jobs import generated_batch_id, run_failure_cause
    from tdm_dagster.gate.reports import load_report
    from tdm_dagster.stats.summary import rejection_codes

    batch_id = generated_batch_id(result) if result.success else (last_generation(home) or {}).get("batch_id")
    outcome: dict[str, Any] = {"ran": True, "success": result.success, "run_id": result.run_id, "batch_id": batch_id, "queued": False}
    if not result.success:
        outcome["error"] = run_failure_cause(result) or "run failed"
    try:
        report = load_report(home, batch_id)
    except (FileNotFoundError, TypeError):
        error = outcome.get("error", "no report")
        outcome["recommendation"] = f"not queued: {error.removeprefix(f'batch {batch_id} was not queued: ')}"
        return outcome
    outcome.update(report["records"])
    outcome["recommendation"] = report["recommendation"]
    outcome["report"] = str(home.report_file(batch_id))
    outcome["rejected_by_code"] = rejection_codes(home, batch_id)
    if outcome["rejected_by_code"]:
        outcome["rejected_file"] = str(home.rejected_file(batch_id))
    for priority in PRIORITIES:
        path = home.queue_dir(priority) / f"{batch_id}.jsonl"
        if path.exists():
            outcome.update(queued=True, queue_file=str(path))
    return outcome


@click.command()
@common.json_outcome
def ingest(as_json: bool) -> None:
    """Process every file in $TDM_HOME/inbox once, through Dagster (job ingest_inbox).
    Exit 1 if a file was not queued (rejected, or refused) or the run failed."""
    from tdm_dagster.jobs import INGEST_INBOX, ingest_outcomes, run_failure_cause

    home = common.home()
    home.inbox_dir.mkdir(exist_ok=True)
    result = common.run(INGEST_INBOX)
    if not result.success:
        cause = run_failure_cause(result) or "see the log above"
        raise common.Refused(f"ingest_inbox failed: {cause}", outcome={"success": False, "run_id": result.run_id})
    outcomes = ingest_outcomes(result)
    lines = [f"{len(outcomes)} file(s) from {home.inbox_dir}"]
    lines += [f"  {o['file']} -> {o['batch_id']}: {'queued' if o['queued'] else 'not queued'} ({o['verdict']})"
              if o["batch_id"] else f"  {o['file']}: {o['verdict']}" for o in outcomes]  # fmt: skip
    common.emit(outcomes, as_json, "\n".join(lines))
    if any(not o["queued"] and o.get("state") != "settling" for o in outcomes):
        sys.exit(1)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--spec", help="Require this spec (chat_sft_v1, syllo_v1, completion_v1, instruction_v1).")
@click.option("--level", type=click.Choice(("quick", "standard", "deep")), help="Gate depth (default: gate.level).")
@click.option("--against", "against", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Evaluation file to check leakage against (repeatable; deep level).")
@click.option("--answers", type=click.Path(exists=True, dir_okay=False), help="JSON Lines of reference answers by line or id, checked against the replies.")
@common.json_outcome
def validate(path: str, spec: str | None, level: str | None, against: tuple[str, ...], answers: str | None, as_json: bool) -> None:
    """Check a file without ingesting it. Exit 1 if it would be rejected, 2 if it cannot be read."""
    if not os.path.isfile(path):
        raise common.Refused(f"file not found: {path}", exit_code=2, outcome={"file": path, "readable": False})
    result = _validate_with_service(path, spec, level, against, answers) or _validate_here(path, spec, level, against, answers, quiet=as_json)
    totals = result["totals"]
    if not result["readable"] and totals["input_records"] == 0:  # nothing read: the file's problem is the whole story
        raise common.Refused(result["file_problem"], exit_code=2, outcome=result)
    lines = [
        f"{result['file']}: {totals['records']} records, {totals['accepted']} accepted, {totals['rejected']} rejected "
        f"(level {result['level']}, spec {result['spec']})",
        f"verdict: {result['recommendation']}",
    ]
    if result["file_problem"]:
        lines.append(f"file problem: {result['file_problem']}")
    by_line = [i for i in result["issues"] if i["line"] is not None]  # the file's own problem is the line above
    lines += [f"  line {i['line']}: {i['severity']} {i['code']}: {i['message']}" for i in by_line[:50]]
    if len(by_line) > 50:
        lines.append(f"  ... {len(by_line) - 50} more (use --json for all)")
    common.emit(result, as_json, "\n".join(lines))
    if totals["accepted"] == 0 and not result["readable"]:
        sys.exit(2)
    if not result["overall_pass"]:
        sys.exit(1)


def _validate_with_service(path: str, spec: str | None, level: str | None, against: tuple[str, ...], answers: str | None) -> dict[str, Any] | None:
    """The report of a ``tdm api`` (its gate is warm): the one at ``$TDM_API_URL``, else one
    running here over this home (:mod:`tdm_dagster.api.local`, found without configuration);
    or None, after one line saying why a service could not give one (then the file is
    validated here; with no service found, nothing is said)."""
    from tdm_dagster.config.settings import API_KEY_ENV, API_URL_ENV

    home = common.home()
    settings = common.config(home)
    url, key = os.environ.get(API_URL_ENV), os.environ.get(API_KEY_ENV)
    if not url:
        from tdm_dagster.api.local import find_local_service

        found = find_local_service(home, settings)
        if found is None:
            return None
        url, key = found.url, found.key
    from tdm_dagster.api.client import ServiceParamError, ServiceRefused, ServiceUnavailable, validate_remote

    try:
        return validate_remote(url, key, path, spec=spec, level=level, answers=answers, against=against, settings=settings.api)
    except ServiceUnavailable as why:
        click.echo(f"tdm api at {url} could not validate ({why}): validating in-process", err=True)
    except ServiceRefused as refused:
        raise click.ClickException(f"tdm api at {url} refused: {refused}") from refused
    except ServiceParamError as error:
        raise click.BadParameter(str(error), param_hint=f"--{error.param}") from error
    return None


def _validate_here(path: str, spec: str | None, level: str | None, against: tuple[str, ...], answers: str | None, *, quiet: bool) -> dict[str, Any]:
    from dataclasses import replace

    from tdm_dagster.progress import terminal_progress

    from tdm_dagster.gate.record_checks import QualityCheckError
    from tdm_dagster.gate.schemas import UnknownSpecError
    from tdm_dagster.gate.validate_file import validate_file
    from tdm_dagster.gate.verify.side_file import AnswersFileError

    home = common.home()
    config = common.config(home)
    if against:
        config = replace(config, gate=replace(config.gate, eval_sets=tuple(against)))
    try:
        with terminal_progress(f"validating {os.path.basename(path)}", quiet=quiet) as advance:
            return validate_file(path, config, spec=spec, level=level, home=home, answers=answers, progress=advance)
    except UnknownSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--spec") from exc
    except AnswersFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--answers") from exc
    except QualityCheckError as exc:  # a configured check that does not load: its name and why, no traceback
        raise click.ClickException(str(exc)) from None
