"""Source health on a real home: a generated batch and this repository's git history
dropped in the inbox and ingested with ``tdm ingest``."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from tdm_dagster import cli
from tdm_dagster.ingest.collectors import git_commits
from tdm_dagster.stats.source_health import source_health

REPO = Path(__file__).resolve().parents[3]


def test_source_health_after_real_generate_and_ingest(home):
    runner = CliRunner()
    done = runner.invoke(cli.main, ["generate", "--force", "--count", "30"])
    assert done.exit_code == 0, done.output
    records = git_commits(REPO, max_commits=25)
    dropped = home.inbox_dir / "commits.jsonl"
    dropped.parent.mkdir(parents=True, exist_ok=True)
    dropped.write_text("".join(json.dumps(r) + "\n" for r in records))
    old = time.time() - 60
    os.utime(dropped, (old, old))
    done = runner.invoke(cli.main, ["ingest"])
    assert done.exit_code == 0, done.output

    now = datetime.now(UTC)
    health = source_health(home, now)
    assert set(health) >= {"builtin", "git"}
    builtin = health["builtin"]
    assert builtin["batches_24h"] == 1 and builtin["records_24h"] == 30
    assert builtin["approved_24h"] + builtin["rejected_24h"] == 30
    assert sum(builtin["tiers_24h"].values()) == builtin["approved_24h"]
    assert builtin["freshness"] == 1.0
    expected = round(0.5 * builtin["approval_rate"] + 0.3 * 1.0 + 0.2 * builtin["pass_rate"], 3)
    assert builtin["health"] == expected
    git = health["git"]
    assert git["records_24h"] == len(records)
    assert git["approved_24h"] + git["rejected_24h"] == len(records)
    assert 0.0 <= git["health"] <= 1.0
    assert git["approved_24h"] > 0, git
    assert "manual" not in health  # the archived commits file belongs to the git source
    json.dumps(health)

    # ten days later nothing is recent: volume drops to zero and freshness to zero
    later = source_health(home, now + timedelta(days=10))
    assert later["builtin"]["records_24h"] == 0 and later["builtin"]["tiers_24h"] == {}
    assert later["builtin"]["freshness"] == 0.0
    assert later["builtin"]["health"] < builtin["health"]
