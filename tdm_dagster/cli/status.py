"""``tdm init`` (the home and the Dagster instance) and ``tdm status`` (queue, server,
cooldown, last batch)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict

import click

from tdm_dagster.cli import common
from tdm_dagster.home import PRIORITIES


@click.command()
def init() -> None:
    """Create $TDM_HOME and, when DAGSTER_HOME is set, the Dagster instance there (its
    dagster.yaml, if missing, and databases), under a lock. Run it once before cron's first
    `dagster job execute`: two processes creating one instance at once can corrupt it."""
    from pathlib import Path

    from tdm_dagster.runs.instance import init_instance

    home = common.home()
    click.echo(f"home: {home.root}")
    folder = os.environ.get("DAGSTER_HOME")
    if not folder:
        click.echo("DAGSTER_HOME is not set: runs are not recorded (set it to keep them for the UI)")
        return
    dagster_home = Path(folder).expanduser().resolve()
    written = init_instance(dagster_home)
    click.echo(f"dagster instance: {dagster_home} ({'dagster.yaml written' if written else 'its dagster.yaml kept'})")


@click.command()
@common.json_option
def status(as_json: bool) -> None:
    """Queue depth, inference server health, cooldown and the last batch."""
    from tdm_dagster.generate.planning import decide_trigger, last_generation
    from tdm_dagster.http.retry import RetryPolicy
    from tdm_dagster.generate.inference_client import InferenceClient
    from tdm_dagster.gate.reports import load_report
    from tdm_dagster.queue.store import TrainingQueue, count_lines

    home = common.home()
    config = common.config(home)
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
    common.emit(data, as_json, "\n".join(lines))
