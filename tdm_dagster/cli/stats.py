"""``tdm stats``: totals over the batches tested, by day and by source."""

from __future__ import annotations

import json
import os

import click

from tdm_dagster.cli import common


@click.group(invoke_without_command=True)
@common.json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Totals over every batch tested; `summary`, `daily` and `sources` go deeper."""
    if ctx.invoked_subcommand:
        return
    from tdm_dagster.gate.reports import summarize
    from tdm_dagster.stats.summary import failed_batches

    from tdm_dagster.stats.batch_catalog import load_batches

    home = common.home()
    in_flight = batches_in_flight()  # first: a batch planned after this is not taken for failed
    batches = load_batches(home)  # each plan and report read once, for the totals and the failures
    summary = summarize([batch.report for batch in batches if batch.report is not None])
    summary["failed_batches"] = failed_batches(home, in_flight, batches=batches)
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
    common.emit(summary, as_json, "\n".join(lines))


def batches_in_flight() -> set[str]:
    """Batches whose run is still in progress (after marking runs whose process was killed
    as failed): the others with no report failed. Without ``DAGSTER_HOME`` runs live in
    ephemeral instances that no other process sees, so there is nothing to ask (and
    Dagster, a second of imports, is not loaded)."""
    if not os.environ.get("DAGSTER_HOME"):
        return set()
    import dagster as dg

    from tdm_dagster.runs.instance import IN_PROGRESS_STATUSES, fail_dead_runs
    from tdm_dagster.jobs import BATCH_PIPELINE

    instance = common.instance()
    fail_dead_runs(instance)
    runs = instance.get_runs(dg.RunsFilter(job_name=BATCH_PIPELINE, statuses=IN_PROGRESS_STATUSES))
    return {run.tags["dagster/partition"] for run in runs if "dagster/partition" in run.tags}


@stats.command("summary")
@common.json_option
def stats_summary(as_json: bool) -> None:
    """Totals by source, spec and tier; token lengths; storage."""
    from tdm_dagster.stats import summary as stats_module

    data = stats_module.summary(common.home(), in_flight=batches_in_flight())
    totals = data["totals"]
    lines = [f"{totals['generated']} generated, {totals['approved']} approved, {totals['rejected']} rejected in {totals['batches']} batches"
             f" ({totals['failed_batches']} failed before their checks)"]  # fmt: skip
    lines += [f"  source {name}: {json.dumps(value, default=str)}" for name, value in data["by_source"].items()]
    lines += [f"  spec {name}: {json.dumps(value, default=str)}" for name, value in data["by_spec"].items()]
    lines.append(f"  tiers: {json.dumps(data['by_tier'])}")
    lines.append(f"  tokens: {json.dumps(data['tokens'])}")
    lines.append(f"  storage: {data['storage_bytes'].get('total', 0):,} bytes")
    common.emit(data, as_json, "\n".join(lines))


@stats.command("daily")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 366))
@common.json_option
def stats_daily(days: int, as_json: bool) -> None:
    """Generated, approved and rejected per day."""
    from tdm_dagster.stats import summary as stats_module

    rows = stats_module.daily(common.home(), days)
    lines = [f"{r['date']}  {r['batches']:>4} batches  {r['generated']:>7} gen  {r['approved']:>7} ok  {r['rejected']:>7} rejected" for r in rows]
    common.emit(rows, as_json, "\n".join(lines))


@stats.command("sources")
@common.json_option
def stats_sources(as_json: bool) -> None:
    """Per-source health: volume in the last 24 h, tiers, last update, health score."""
    from tdm_dagster.stats import summary as stats_module

    data = stats_module.sources(common.home())
    lines = [f"{name:<14} health {h['health']:.3f}  {h['records_24h']:>6} records/24h  last {h['last_update']}" for name, h in data.items()]
    common.emit(data, as_json, "\n".join(lines) or "no sources yet")
