"""Commands that answer at once: the code location and ``tdm stats`` import nothing heavy
(checked with ``python -X importtime`` in a fresh process), dagster-ray only where the
gate runs on Ray. The seconds themselves are measured by ``bench/bench_commands.py``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.startup import TDM_MAIN, heavy, home_with_batches, imported_modules

REPORT = {
    "overall_pass": True,
    "recommendation": "approve",
    "records": {"generated": 10, "approved": 9, "rejected": 1},
    "results": {"format": {"passed": True, "details": {"pass_rate": 0.9}}, "length": {"passed": True, "details": {"pass_rate": 1.0}}},
}
PLAN = {"skill": "syllo", "level": 1, "count": 10, "source": "builtin", "priority": "normal", "spec": "syllo_v1", "created_at": "2026-11-01T10:00:00+00:00"}


def _home(tmp_path: Path, config: str = "") -> dict[str, str]:
    root = tmp_path / "home"
    root.mkdir()
    (root / "config.yaml").write_text(config)
    return {"TDM_HOME": str(root), "DAGSTER_HOME": ""}


def test_the_code_location_imports_nothing_heavy(tmp_path: Path) -> None:
    completed, modules = imported_modules("import tdm_dagster.definitions", env=_home(tmp_path))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "tdm_dagster.location" in modules  # the list is real
    assert heavy(modules) == []


def test_dagster_ray_loads_only_where_the_gate_runs_on_ray(tmp_path: Path) -> None:
    code = "import tdm_dagster.definitions as d; print(type(d.defs.resources['ray']).__name__)"
    completed, modules = imported_modules(code, env=_home(tmp_path, "gate:\n  engine: ray\n"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "TdmRayResource" and "dagster_ray" in modules
    assert "ray" not in modules  # Ray itself connects when a step starts


def test_stats_over_a_thousand_batches_needs_no_dagster(tmp_path: Path) -> None:
    env = _home(tmp_path)
    home_with_batches(Path(env["TDM_HOME"]), 1000, REPORT, PLAN)
    completed, modules = imported_modules(TDM_MAIN, ("stats", "--json"), env=env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout)
    assert (summary["batches"], summary["total_generated"], summary["total_approved"]) == (1000, 10000, 9000)
    assert summary["checks"]["format"] == {"avg_pass_rate": 0.9, "batches_passed": 1000, "batches_run": 1000}
    assert summary["batches_failed"] == 0
    assert "dagster" not in modules and heavy(modules) == []
