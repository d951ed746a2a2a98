"""Stats over a TDM_HOME populated by real runs (``tdm generate`` and ``tdm ingest``)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from tdm_dagster import cli
from tdm_dagster.stats import summary as stats
from tdm_dagster.ingest.collectors import doc_sections
from tdm_dagster.gate.quality import TokenCounter

README = Path(__file__).resolve().parents[3] / "README.md"


def _populate(home) -> None:
    runner = CliRunner()
    done = runner.invoke(cli.main, ["generate", "--force", "--count", "30"])
    assert done.exit_code == 0, done.output
    inbox = home.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    # a collector's file (docs) and a hand-made file (manual) with a duplicate-heavy batch
    (inbox / "readme.jsonl").write_text("".join(json.dumps(r) + "\n" for r in doc_sections(README)))
    row = {"prompt": "Name the capital of France, please.", "completion": "The capital of France is Paris."}
    (inbox / "hand.jsonl").write_text((json.dumps(row) + "\n") * 5)
    old = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    # inbox files are salvaged by default; this home rejects a failing file whole, so the
    # hand-made one is a rejected batch (ingest exits 1)
    done = runner.invoke(cli.main, ["ingest"], env={"TDM_GATE_ON_BATCH_FAILURE": "{inbox: reject}"})
    assert done.exit_code == 1, done.output
    assert "readme.jsonl -> " in done.output and "hand.jsonl -> " in done.output
    assert "hand.jsonl -> inbox_hand" in done.output and "not queued" in done.output


def _reports(home) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home.root / "reports").glob("*.json"))]


def test_summary_daily_and_sources_over_real_runs(home):
    _populate(home)
    reports = _reports(home)
    assert len(reports) == 3
    result = stats.summary(home)
    json.dumps(result)

    totals = result["totals"]
    assert totals["batches"] == 3 and totals["reported_batches"] == 3
    assert totals["generated"] == sum(r["records"]["generated"] for r in reports)
    assert totals["approved"] == sum(r["records"]["approved"] for r in reports)
    assert totals["generated"] == totals["approved"] + totals["rejected"]
    assert totals["passed_batches"] == sum(1 for r in reports if r["overall_pass"])
    assert totals["passed_batches"] < 3  # the duplicate-heavy hand-made file fails diversity

    by_source = result["by_source"]
    assert set(by_source) == {"builtin", "docs", "manual"}
    assert by_source["builtin"]["generated"] == 30 and by_source["builtin"]["batches"] == 1
    assert by_source["docs"]["generated"] == len(doc_sections(README))
    assert by_source["manual"]["generated"] == 5 and by_source["manual"]["approved"] == 0
    assert result["by_spec"]["syllo_v1"]["generated"] == 30
    assert sum(s["generated"] for s in result["by_spec"].values()) == totals["generated"]
    assert sum(result["by_tier"].values()) == totals["approved"]

    # tokens: the same counts as the bundled tokenizer over every approved record
    texts = []
    for path in sorted((home.root / "batches").glob("*/approved.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                texts.append("\n".join(m["content"] for m in json.loads(line)["messages"]))
    counts = TokenCounter().count(texts)
    tokens = result["tokens"]
    assert tokens["records"] == len(texts) == totals["approved"]
    assert tokens["total_tokens"] == sum(counts) > 0
    assert tokens["avg_tokens"] == round(sum(counts) / len(counts), 2)
    assert tokens["estimated"] is False
    sampled = stats.token_stats(home, max_records=5)
    assert sampled["counted"] == 5 and sampled["estimated"] is True and sampled["records"] == len(texts)
    assert stats.summary(home, tokens=False)["tokens"] is None

    # storage: the bytes of every file, per top-level folder
    storage = result["storage_bytes"]
    for folder in ("batches", "reports", "queue", "archive"):
        expected = sum(p.stat().st_size for p in (home.root / folder).rglob("*") if p.is_file())
        assert storage[folder] == expected > 0
    assert storage["total"] == sum(v for k, v in storage.items() if k != "total")

    # daily: everything happened today
    now = datetime.now(UTC)
    days = stats.daily(home, days=14, now=now)
    assert len(days) == 14 and days[-1]["date"] == now.date().isoformat()
    assert days[0]["date"] == (now.date() - timedelta(days=13)).isoformat()
    today = days[-1]
    assert (today["batches"], today["generated"], today["approved"], today["rejected"]) == (
        3, totals["generated"], totals["approved"], totals["rejected"])
    assert all(d["generated"] == 0 for d in days[:-1])
    assert stats.daily(home, days=3, now=now + timedelta(days=5))[-1]["generated"] == 0
    assert stats.daily(home, days=0) == []

    # sources: per-source health, the manual source knows its archived file
    health = stats.sources(home, now)
    json.dumps(health)
    assert set(health) == {"builtin", "docs", "manual"}
    assert health["manual"]["archived_files"] == 1 and health["manual"]["inbox_pending"] == 0
    assert health["manual"]["records_24h"] == 5 and health["manual"]["pass_rate"] == 0.0
    assert health["manual"]["health"] < health["builtin"]["health"]
    assert health["docs"]["records_24h"] == by_source["docs"]["generated"]
    for entry in health.values():
        assert 0.0 <= entry["health"] <= 1.0


def test_stats_of_an_empty_home(home):
    result = stats.summary(home)
    assert result["totals"]["batches"] == 0 and result["by_source"] == {}
    assert result["tokens"]["records"] == 0 and result["tokens"]["total_tokens"] == 0
    assert all(d["generated"] == 0 for d in stats.daily(home, days=2))
    assert stats.sources(home) == {}


def test_stats_cli_subcommands(home):
    import json

    from click.testing import CliRunner

    from tdm_dagster.cli import main

    runner = CliRunner()
    assert runner.invoke(main, ["generate", "--force", "--count", "20", "--seed", "4"]).exit_code == 0
    summary = json.loads(runner.invoke(main, ["stats", "summary", "--json"]).stdout)
    assert summary["totals"]["generated"] == 20
    daily = json.loads(runner.invoke(main, ["stats", "daily", "--days", "3", "--json"]).stdout)
    assert len(daily) == 3 and sum(row["generated"] for row in daily) == 20
    sources = json.loads(runner.invoke(main, ["stats", "sources", "--json"]).stdout)
    assert sources["builtin"]["records_24h"] == 20 and 0 < sources["builtin"]["health"] <= 1
    totals = json.loads(runner.invoke(main, ["stats", "--json"]).stdout)
    assert totals["total_generated"] == 20  # the plain command keeps its keys


def test_a_plan_with_no_report_is_failed_unless_its_run_is_in_flight(home):
    from tdm_dagster.records.batches import BatchStore
    from tdm_dagster.config.settings import load_config
    from tdm_dagster.generate.planning import plan_batch

    plan = plan_batch(home, load_config(home).auto_generate, "syllo_autogen_20260101_000000_count3")
    BatchStore(home).save_generated(plan, [{"n": 1}, {"n": 2}, {"n": 3}])  # generated, never checked
    assert stats.failed_batches(home, in_flight=()) == [plan.batch_id]
    assert stats.failed_batches(home, in_flight={plan.batch_id}) == []
    assert stats.summary(home, tokens=False)["totals"]["failed_batches"] == 1
    assert stats.summary(home, tokens=False, in_flight={plan.batch_id})["totals"]["failed_batches"] == 0
    (home.reports_dir / f"{plan.batch_id}.json").write_text(json.dumps({"records": {"generated": 3, "approved": 0, "rejected": 3}}))
    assert stats.failed_batches(home, in_flight=()) == []  # checked: rejected, not failed
