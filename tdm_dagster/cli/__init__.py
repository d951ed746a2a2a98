"""``tdm``: the command line for people and cron.

Every command takes ``--json`` for scripts. Commands that change data (``generate``) run
through Dagster, so with ``DAGSTER_HOME`` set their runs show in the UI like any other.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from typing import Any

import click

from tdm_dagster.cli.datasets import datasets
from tdm_dagster.config.settings import ConfigError, describe, load_config
from tdm_dagster.home import PRIORITIES, TdmHome


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def _home() -> TdmHome:
    return TdmHome.from_env().ensure()


def _config(home: TdmHome):
    try:
        return load_config(home)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="tdm-dagster")
def main() -> None:
    """tdm: training-data manager (generate -> test -> queue) on Dagster.

    State lives under $TDM_HOME (default ~/.tdm); config in $TDM_HOME/config.yaml.
    """


main.add_command(datasets)


# --- init -------------------------------------------------------------------------------

@main.command()
def init() -> None:
    """Create $TDM_HOME and, when DAGSTER_HOME is set, the Dagster instance there (its
    dagster.yaml, if missing, and databases), under a lock. Run it once before cron's first
    `dagster job execute`: two processes creating one instance at once can corrupt it."""
    from pathlib import Path

    from tdm_dagster.runs.instance import init_instance

    home = _home()
    click.echo(f"home: {home.root}")
    folder = os.environ.get("DAGSTER_HOME")
    if not folder:
        click.echo("DAGSTER_HOME is not set: runs are not recorded (set it to keep them for the UI)")
        return
    dagster_home = Path(folder).expanduser().resolve()
    written = init_instance(dagster_home)
    click.echo(f"dagster instance: {dagster_home} ({'dagster.yaml written' if written else 'its dagster.yaml kept'})")


# --- status -----------------------------------------------------------------------------

@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Queue depth, inference server health, cooldown and the last batch."""
    from tdm_dagster.generate.planning import decide_trigger, last_generation
    from tdm_dagster.http.retry import RetryPolicy
    from tdm_dagster.generate.inference_client import InferenceClient
    from tdm_dagster.gate.reports import load_report
    from tdm_dagster.queue.store import TrainingQueue, count_lines

    home = _home()
    config = _config(home)
    settings = config.auto_generate
    files = TrainingQueue(home).files()
    queue = {p: {"files": 0, "examples": 0} for p in PRIORITIES}
    for queued in files:
        queue[queued.priority]["files"] += 1
        queue[queued.priority]["examples"] += count_lines(queued.path)
    health = None
    if settings.source == "inference":  # no other source uses the server: do not even ask it
        with InferenceClient(config.inference_base_url, timeout_s=2.0, retry=RetryPolicy(max_attempts=1)) as client:
            health = client.health()
    unused = f"not used (source: {settings.source})"
    last = last_generation(home)
    decision = decide_trigger(settings, len(files), (last or {}).get("started_at"), time.time())
    last_batch = None
    if last:
        last_batch = {"batch_id": last["batch_id"], "started_at": last["started_at"]}
        try:
            last_batch["records"] = load_report(home, last["batch_id"])["records"]
            last_batch["recommendation"] = load_report(home, last["batch_id"])["recommendation"]
        except FileNotFoundError:
            last_batch["recommendation"] = "no report (still running, or failed before its checks)"
    data = {
        "home": str(home.root),
        "queue": queue,
        "queue_depth": len(files),
        "threshold": settings.threshold,
        "auto_generate_enabled": settings.enabled,
        "source": settings.source,
        "inference": {"url": config.inference_base_url, "used": health is not None,
                      **(asdict(health) if health else {"ok": None, "detail": unused})},  # fmt: skip
        "cooldown_left_sec": round(decision.cooldown_left_sec),
        "would_generate": decision.generate,
        "trigger_reason": decision.reason,
        "last_batch": last_batch,
    }
    lines = [f"home: {home.root}", f"queue depth: {len(files)} file(s) (threshold {settings.threshold})"]
    lines += [f"  {p:<7} {queue[p]['files']:>4} files {queue[p]['examples']:>8} examples" for p in PRIORITIES]
    server = unused if health is None else "healthy" if health.ok else f"unavailable ({health.detail})"
    lines.append(f"inference server {config.inference_base_url}: {server}")
    for gpu in (health.gpus if health else None) or []:
        lines.append(f"  gpu {gpu.name}: {gpu.memory_used_mb} / {gpu.memory_total_mb} MB used, {gpu.utilization_pct}% busy")
    lines.append(f"auto-generate: {'on' if settings.enabled else 'off'}, source {settings.source}; {decision.reason}")
    lines.append(f"cooldown left: {decision.cooldown_left_sec:.0f}s")
    if last_batch:
        lines.append(f"last batch: {last_batch['batch_id']}: {last_batch['recommendation']}")
    else:
        lines.append("last batch: none yet")
    _emit(data, as_json, "\n".join(lines))


# --- generate ---------------------------------------------------------------------------

def dagster_instance():
    """The persistent instance when DAGSTER_HOME is set (runs show in the UI), else an
    ephemeral one; a fresh one is created under a lock (``tdm_dagster.runs.instance``)."""
    from tdm_dagster.runs.instance import open_instance

    return open_instance()


def _cli_tags() -> dict[str, str]:
    """Tags of a run this command executes in its own process: who started it, and the
    process, so a killed command leaves no run in progress (``tdm_dagster.runs.owner``)."""
    from tdm_dagster.runs.owner import owner_tags

    return {"tdm/trigger": "cli", **owner_tags()}


@main.command()
@click.option("--force", is_flag=True, help="Generate even if disabled, in cooldown or the queue is full.")
@click.option("--count", type=click.IntRange(min=1), help="Examples to generate (default: auto_generate.count).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed, for a reproducible batch.")
@click.option("--skill", help="Skill to generate (default: config, then the curriculum's active skill).")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Queue priority (default: auto_generate.priority).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def generate(force: bool, count: int | None, seed: int | None, skill: str | None, priority: str | None, as_json: bool) -> None:
    """Run generate_and_queue once through Dagster: generate, test, queue."""
    from tdm_dagster.generate.planning import decide_trigger, last_generation
    from tdm_dagster.queue.store import TrainingQueue

    home = _home()
    settings = _config(home).auto_generate
    instance = dagster_instance()
    if not force:
        from tdm_dagster.sensors.queue_low import runs_in_flight

        last = (last_generation(home) or {}).get("started_at")
        decision = decide_trigger(settings, TrainingQueue(home).total_depth(), last, time.time(), runs_in_flight(instance))
        if not decision.generate:
            _emit({"ran": False, "reason": decision.reason}, as_json, f"not generating: {decision.reason} (use --force to override)")
            return
    from tdm_dagster.definitions import defs
    from tdm_dagster.jobs import GENERATE_AND_QUEUE

    overrides = {"count": count, "seed": seed, "skill": skill, "priority": priority}
    given = {key: value for key, value in overrides.items() if value is not None}
    click.echo(f"running {GENERATE_AND_QUEUE} (state in {home.root})", err=True)
    result = defs.resolve_job_def(GENERATE_AND_QUEUE).execute_in_process(
        run_config={
            "ops": {"run_one_batch": {"config": given}},
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
        instance=instance,
        raise_on_error=False,
        tags=_cli_tags(),
    )
    outcome = _batch_outcome(home, result)
    codes = ", ".join(f"{code} {count}" for code, count in outcome.get("rejected_by_code", {}).items())
    text = (
        f"batch {outcome['batch_id']}: {outcome['recommendation']}\n"
        f"  generated {outcome.get('generated', 0)}, approved {outcome.get('approved', 0)}, rejected {outcome.get('rejected', 0)}"
        + (f"\n  rejected records by reason: {codes}" if codes else "")
        + (f"\n  queued: {outcome['queue_file']}" if outcome.get("queue_file") else "")
        + (f"\n  report: {outcome['report']}" if outcome.get("report") else "")
        + (f"\n  rejected records: {outcome['rejected_file']}" if outcome.get("rejected_file") else "")
    )
    _emit(outcome, as_json, text)
    if not result.success:
        sys.exit(1)


def _batch_outcome(home: TdmHome, result) -> dict[str, Any]:
    from tdm_dagster.generate.planning import last_generation
    from tdm_dagster.jobs import run_failure_cause
    from tdm_dagster.gate.reports import load_report
    from tdm_dagster.stats.summary import rejection_codes

    batch_id = result.output_for_node("run_one_batch") if result.success else (last_generation(home) or {}).get("batch_id")
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
    outcome["report"] = str(home.reports_dir / f"{batch_id}.json")
    outcome["rejected_by_code"] = rejection_codes(home, batch_id)
    if outcome["rejected_by_code"]:
        outcome["rejected_file"] = str(home.rejected_dir / f"{batch_id}.jsonl")
    for priority in PRIORITIES:
        path = home.queue_dir(priority) / f"{batch_id}.jsonl"
        if path.exists():
            outcome.update(queued=True, queue_file=str(path))
    return outcome


# --- ingest -----------------------------------------------------------------------------

@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ingest(as_json: bool) -> None:
    """Process every file in $TDM_HOME/inbox once, through Dagster (job ingest_inbox)."""
    from tdm_dagster.definitions import defs
    from tdm_dagster.ingest.inbox import inbox_dir
    from tdm_dagster.jobs import INGEST_INBOX, run_failure_cause

    home = _home()
    inbox_dir(home).mkdir(exist_ok=True)
    result = defs.resolve_job_def(INGEST_INBOX).execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        instance=dagster_instance(),
        raise_on_error=False,
        tags=_cli_tags(),
    )
    if not result.success:
        raise click.ClickException(f"ingest_inbox failed: {run_failure_cause(result) or 'see the log above'}")
    outcomes = result.output_for_node("ingest_inbox_files")
    lines = [f"{len(outcomes)} file(s) from {inbox_dir(home)}"]
    lines += [f"  {o['file']} -> {o['batch_id']}: {'queued' if o['queued'] else 'not queued'} ({o['verdict']})"
              if o["batch_id"] else f"  {o['file']}: {o['verdict']}" for o in outcomes]  # fmt: skip
    _emit(outcomes, as_json, "\n".join(lines))
    if any(not o["queued"] and o.get("state") != "settling" for o in outcomes):
        sys.exit(1)


# --- stats ------------------------------------------------------------------------------

@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Totals over every batch tested; `summary`, `daily` and `sources` go deeper."""
    if ctx.invoked_subcommand:
        return
    from tdm_dagster.gate.reports import iter_reports, summarize
    from tdm_dagster.stats.summary import failed_batches

    home = _home()
    summary = summarize(iter_reports(home))
    summary["failed_batches"] = failed_batches(home, _batches_in_flight())
    summary["batches_failed"] = len(summary["failed_batches"])
    lines = [
        f"batches: {summary['batches']} tested ({summary['batches_approved']} approved), "
        f"{summary['batches_failed']} failed before their checks",
        f"examples: {summary['total_generated']} generated, {summary['total_approved']} approved, "
        f"{summary['total_rejected']} rejected (approval rate {summary['approval_rate']:.1%})",
    ]
    for name, check in summary["checks"].items():
        rate = "n/a" if check["avg_pass_rate"] is None else f"{check['avg_pass_rate']:.1%}"
        lines.append(f"  {name:<10} avg pass rate {rate:>7}, passed {check['batches_passed']}/{check['batches_run']} batches")
    _emit(summary, as_json, "\n".join(lines))


def _batches_in_flight() -> set[str]:
    """Batches whose run is still in progress (after marking runs whose process was killed
    as failed): the others with no report failed."""
    import dagster as dg
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    from tdm_dagster.runs.instance import fail_dead_runs
    from tdm_dagster.jobs import BATCH_PIPELINE

    instance = dagster_instance()
    fail_dead_runs(instance)
    runs = instance.get_runs(dg.RunsFilter(job_name=BATCH_PIPELINE, statuses=IN_PROGRESS_RUN_STATUSES))
    return {run.tags["dagster/partition"] for run in runs if "dagster/partition" in run.tags}


@stats.command("summary")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats_summary(as_json: bool) -> None:
    """Totals by source, spec and tier; token lengths; storage."""
    from tdm_dagster.stats import summary as stats_module

    data = stats_module.summary(_home(), in_flight=_batches_in_flight())
    totals = data["totals"]
    lines = [f"{totals['generated']} generated, {totals['approved']} approved, {totals['rejected']} rejected in {totals['batches']} batches"
             f" ({totals['failed_batches']} failed before their checks)"]  # fmt: skip
    lines += [f"  source {name}: {json.dumps(value, default=str)}" for name, value in data["by_source"].items()]
    lines += [f"  spec {name}: {json.dumps(value, default=str)}" for name, value in data["by_spec"].items()]
    lines.append(f"  tiers: {json.dumps(data['by_tier'])}")
    lines.append(f"  tokens: {json.dumps(data['tokens'])}")
    lines.append(f"  storage: {data['storage_bytes'].get('total', 0):,} bytes")
    _emit(data, as_json, "\n".join(lines))


@stats.command("daily")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 366))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats_daily(days: int, as_json: bool) -> None:
    """Generated, approved and rejected per day."""
    from tdm_dagster.stats import summary as stats_module

    rows = stats_module.daily(_home(), days)
    lines = [f"{r['date']}  {r['batches']:>4} batches  {r['generated']:>7} gen  {r['approved']:>7} ok  {r['rejected']:>7} rejected" for r in rows]
    _emit(rows, as_json, "\n".join(lines))


@stats.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats_sources(as_json: bool) -> None:
    """Per-source health: volume in the last 24 h, tiers, last update, health score."""
    from tdm_dagster.stats import summary as stats_module

    data = stats_module.sources(_home())
    lines = [f"{name:<14} health {h['health']:.3f}  {h['records_24h']:>6} records/24h  last {h['last_update']}" for name, h in data.items()]
    _emit(data, as_json, "\n".join(lines) or "no sources yet")


# --- recheck ----------------------------------------------------------------------------

@main.group(invoke_without_command=True)
@click.option("--dry-run", is_flag=True, help="Report what would be trimmed or held; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def recheck(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Re-check every queued file against today's gate (the recheck_quality job does this
    every 12 h); trims records and holds files that no longer pass."""
    if ctx.invoked_subcommand:
        return
    from tdm_dagster.queue.recheck import recheck_queue

    home = _home()

    def progress(verdict) -> None:
        if not as_json:
            reasons = f": {'; '.join(verdict.reasons)}" if verdict.reasons else ""
            click.echo(f"{verdict.priority:>6}/{verdict.batch_id} ({verdict.records} records) {verdict.verdict}{reasons}", err=True)

    result = recheck_queue(home, _config(home), apply=not dry_run, progress=progress)
    data = result.to_dict()
    totals = data["totals"]
    prefix = "dry run: would have " if dry_run else ""
    text = (f"{totals['files']} file(s), {totals['records']} records checked at level {result.level}: {prefix}"
            f"{totals['passed']} passed, {totals['trimmed']} trimmed ({totals['records_removed']} records), {totals['held']} held")  # fmt: skip
    _emit(data, as_json, text)


@recheck.command("held")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def recheck_held(as_json: bool) -> None:
    """Files the re-check holds back, with their reasons."""
    from tdm_dagster.queue.recheck import held_files

    rows = held_files(_home())
    lines = [f"{r['priority']:>6}/{r['batch_id']}  held {r['held_at']}: {'; '.join(r['reasons'])}" for r in rows]
    _emit(rows, as_json, "\n".join(lines) or "nothing is held")


@recheck.command("release")
@click.argument("batch_id")
def recheck_release(batch_id: str) -> None:
    """Put a held file back in the queue (you decided it is fine)."""
    from tdm_dagster.queue.recheck import release

    try:
        click.echo(f"released {batch_id} to {release(_home(), batch_id)}")
    except (FileNotFoundError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc


# --- validate ---------------------------------------------------------------------------

@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--spec", help="Require this spec (chat_sft_v1, syllo_v1, completion_v1, instruction_v1).")
@click.option("--level", type=click.Choice(("quick", "standard", "deep")), help="Gate depth (default: gate.level).")
@click.option("--against", "against", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Evaluation file to check leakage against (repeatable; deep level).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate(path: str, spec: str | None, level: str | None, against: tuple[str, ...], as_json: bool) -> None:
    """Check a file without ingesting it. Exit 1 if it would be rejected, 2 if unreadable."""
    from dataclasses import replace

    from tdm_dagster.gate.schemas import UnknownSpecError
    from tdm_dagster.gate.validate_file import validate_file

    home = _home()
    config = _config(home)
    if against:
        config = replace(config, gate=replace(config.gate, eval_sets=tuple(against)))
    try:
        result = validate_file(path, config, spec=spec, level=level, home=home)
    except UnknownSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--spec") from exc
    totals = result["totals"]
    lines = [
        f"{result['file']}: {totals['records']} records, {totals['accepted']} accepted, {totals['rejected']} rejected "
        f"(level {result['level']}, spec {result['spec']})",
        f"verdict: {result['recommendation']}",
    ]
    if result["file_problem"]:
        lines.append(f"file problem: {result['file_problem']}")
    shown = result["issues"][:50]
    lines += [f"  line {i['line']}: {i['severity']} {i['code']}: {i['message']}" for i in shown]
    if len(result["issues"]) > len(shown):
        lines.append(f"  ... {len(result['issues']) - len(shown)} more (use --json for all)")
    _emit(result, as_json, "\n".join(lines))
    if totals["accepted"] == 0 and not result["readable"]:
        sys.exit(2)
    if not result["overall_pass"]:
        sys.exit(1)


# --- curriculum -------------------------------------------------------------------------

@main.group()
def curriculum() -> None:
    """The curriculum: active skill, level per skill, accuracy history."""


@curriculum.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def curriculum_status(as_json: bool) -> None:
    """Show levels, recent accuracy and what it takes to advance."""
    from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path

    path = curriculum_path(_home())
    try:
        state = CurriculumState.load(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(state.to_dict(), as_json, state.format_status())


@curriculum.command("set-skill")
@click.argument("skill")
def curriculum_set_skill(skill: str) -> None:
    """Make SKILL the one generated next."""
    from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path

    path = curriculum_path(_home())
    try:
        state = CurriculumState.load(path)
        state.set_active(skill)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    state.save(path)
    click.echo(f"active skill: {state.active_skill}")


# --- skills -----------------------------------------------------------------------------

@main.group()
def skills() -> None:
    """The built-in skill generators as an HTTP API."""


@skills.command("serve")
@click.option("--skill", "skill_names", multiple=True, help="Serve only these skills (repeatable); default all.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def skills_serve(skill_names: tuple[str, ...], host: str, port: int) -> None:
    """Serve generators, e.g. `--skill syllo --port 8080` and `--skill binary --port 8090`."""
    from tdm_dagster.generate.skill_api import serve

    serve(host=host, port=port, skills=list(skill_names) or None)


# --- train, evaluate, deploy -----------------------------------------------------------

def _run_assets(job_name: str, *, partition_key: str | None = None, assets: list[str] | None = None, run_config: dict | None = None):
    import dagster as dg

    from tdm_dagster.definitions import defs

    selection = [dg.AssetKey(name) for name in assets] if assets else None
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=dagster_instance(),
        partition_key=partition_key,
        asset_selection=selection,
        raise_on_error=False,
        tags=_cli_tags(),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})},
    )


def _step_metadata(result, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == [asset]:
            return {key: value.value for key, value in event.materialization.metadata.items()}
    return {}


def _finish(result, asset: str, as_json: bool, text) -> None:
    if not result.success:
        from tdm_dagster.jobs import run_failure_cause

        raise click.ClickException(run_failure_cause(result) or f"{asset} failed")
    data = _step_metadata(result, asset)
    _emit(data, as_json, text(data))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def train(as_json: bool) -> None:
    """Train a new checkpoint on the queue (asset checkpoint, through Dagster)."""
    from tdm_dagster.assets.train import checkpoint_partitions
    from tdm_dagster.jobs import TRAINING_PIPELINE, new_checkpoint_key

    key = new_checkpoint_key()
    instance = dagster_instance()
    instance.add_dynamic_partitions(checkpoint_partitions.name, [key])
    result = _run_assets(TRAINING_PIPELINE, partition_key=key, assets=["checkpoint"])
    _finish(result, "checkpoint", as_json, lambda d: f"{key}: {d['steps']} steps, loss {d['first_loss']:.3f} -> {d['final_loss']:.3f}, {d['path']}")


@main.command()
@click.argument("key", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(key: str | None, as_json: bool) -> None:
    """Evaluate checkpoint KEY (default: the newest) on held-out skill sets."""
    from tdm_dagster.assets.train import checkpoint_partitions
    from tdm_dagster.jobs import TRAINING_PIPELINE

    keys = dagster_instance().get_dynamic_partitions(checkpoint_partitions.name)
    if not keys:
        raise click.ClickException("no checkpoint yet: run `tdm train` first")
    key = key or sorted(keys)[-1]
    result = _run_assets(TRAINING_PIPELINE, partition_key=key, assets=["checkpoint_evaluation"])
    _finish(result, "checkpoint_evaluation", as_json, lambda d: f"{key}: accuracy {d['overall_accuracy']:.1%}, held-out loss {d['held_out_loss']:.4f}")


@main.command()
@click.option("--force", is_flag=True, help="Deploy even if it scores below the deployed checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def deploy(force: bool, as_json: bool) -> None:
    """Deploy the best evaluated checkpoint to the serving folder (asset deployed_model)."""
    result = _run_assets("deploy_best", run_config={"ops": {"deployed_model": {"config": {"force": force}}}})
    # the asset's reasons say "use force" (its run-config field); here the flag is --force
    _finish(result, "deployed_model", as_json, lambda d: f"{d['checkpoint']}: {d['reason'].replace('use force', 'use --force')} ({d['latency_s']} s)")


# --- serve ------------------------------------------------------------------------------

@main.command()
@click.option("--host", help="Default: serving.host.")
@click.option("--port", type=click.IntRange(1, 65535), help="Default: serving.port.")
@click.option("--dir", "serving_dir", type=click.Path(file_okay=False), help="Default: $TDM_HOME/serving.")
def serve(host: str | None, port: int | None, serving_dir: str | None) -> None:
    """OpenAI-compatible server for the deployed checkpoint (reloads on each deployment)."""
    from tdm_dagster.serving.server import serve as run_server

    home = _home()
    settings = _config(home).serving
    run_server(serving_dir or home.root / "serving", host=host or settings.host, port=port or settings.port)


# --- config -----------------------------------------------------------------------------

@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_config(as_json: bool) -> None:
    """The effective config (file + env overrides), validated."""
    data = describe(_config(_home()))
    if as_json:
        _emit(data, True, "")
        return
    lines = [f"# from {data.pop('source')}"]
    for section, values in data.items():
        lines.append(f"{section}:")
        lines += [f"  {key}: {json.dumps(value, default=dict)}" for key, value in values.items()]
    click.echo("\n".join(lines))
