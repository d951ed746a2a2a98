"""generate_and_queue through Dagster (in-process and `dagster job execute`), and the tdm CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.config.settings import SECTIONS
from tdm_dagster.queue.store import TrainingQueue

VENV_BIN = Path(sys.executable).parent


def run_cli(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_generate_and_queue_needs_no_partition_beforehand(home, dagster_home):
    from tdm_dagster.definitions import defs

    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("batches") == []
        result = defs.resolve_job_def("generate_and_queue").execute_in_process(
            instance=instance, run_config={"ops": {"run_one_batch": {"config": {"count": 25}}}}
        )
        assert result.success
        batch_id = result.output_for_node("run_one_batch")
        assert instance.get_dynamic_partitions("batches") == [batch_id]
        child_runs = instance.get_runs(dg.RunsFilter(job_name="batch_pipeline"))
        assert [run.tags["dagster/partition"] for run in child_runs] == [batch_id]
        assert child_runs[0].tags["tdm/parent_run_id"] == result.run_id
    assert (home.queue_dir("normal") / f"{batch_id}.jsonl").exists()


def test_dagster_job_execute_from_cron_records_runs(home, dagster_home, tmp_path):
    env = {**os.environ, "TDM_AUTO_GENERATE_COUNT": "20"}
    completed = subprocess.run(
        [str(VENV_BIN / "dagster"), "job", "execute", "-m", "tdm_dagster.definitions", "-j", "generate_and_queue"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert TrainingQueue(home).total_depth() == 1
    with dg.DagsterInstance.get() as instance:
        jobs = sorted(run.job_name for run in instance.get_runs())
    assert jobs == ["batch_pipeline", "generate_and_queue"]


def test_cli_generate_status_stats(home, dagster_home):
    result = run_cli("generate", "--count", "30", "--seed", "5", "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["queued"] is True and outcome["success"] is True
    assert outcome["generated"] == 30
    assert outcome["approved"] + outcome["rejected"] == 30

    again = run_cli("generate", "--json")  # cooldown (300 s by default) now blocks
    assert json.loads(again.stdout)["ran"] is False
    assert "cooldown" in json.loads(again.stdout)["reason"]

    status = json.loads(run_cli("status", "--json").stdout)
    assert status["queue"]["normal"] == {"files": 1, "examples": outcome["approved"]}
    assert status["inference"]["used"] is False  # the embedded default generates in-process
    assert status["inference"]["detail"] == "not used (source: builtin)"
    assert 0 < status["cooldown_left_sec"] <= 300
    assert status["last_batch"]["batch_id"] == outcome["batch_id"]

    stats = json.loads(run_cli("stats", "--json").stdout)
    assert stats["total_generated"] == 30
    assert stats["total_approved"] == outcome["approved"]
    assert stats["total_rejected"] == outcome["rejected"]
    assert stats["approval_rate"] == pytest.approx(outcome["approved"] / 30, abs=1e-4)

    text = run_cli("status").stdout
    assert "queue depth: 1 file(s)" in text and "cooldown left" in text


def test_cli_generate_force_ignores_cooldown_and_disabled(home, dagster_home):
    home.config_path.write_text("auto_generate:\n  enabled: false\n  count: 15\n")
    skipped = run_cli("generate")
    assert "not generating: auto_generate.enabled is false" in skipped.stdout
    forced = run_cli("generate", "--force", "--json", "--priority", "high")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["queue_file"].startswith(str(home.queue_dir("high")))


def test_cli_rejects_bad_config_clearly(home):
    home.config_path.write_text("auto_generate:\n  priority: urgent\n")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code != 0
    assert "auto_generate.priority is 'urgent'; expected one of high, normal, low" in result.output


def test_cli_curriculum(home):
    status = json.loads(run_cli("curriculum", "status", "--json").stdout)
    assert status["active_skill"] == "syllo"
    assert run_cli("curriculum", "set-skill", "Binary").stdout.strip() == "active skill: binary"
    unknown = CliRunner().invoke(main, ["curriculum", "set-skill", "chess"])
    assert unknown.exit_code != 0 and "known skills" in unknown.output


def test_console_script_is_installed(home):
    completed = subprocess.run([str(VENV_BIN / "tdm"), "stats", "--json"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["total_generated"] == 0


def test_definitions_import_is_light():
    code = (
        "import json, sys, time; t = time.perf_counter(); import tdm_dagster.definitions as d; "
        "print(json.dumps({'heavy': [m for m in ('great_expectations', 'torch', 'transformers', 'pandas', 'ray') if m in sys.modules], "
        "'seconds': time.perf_counter() - t, 'assets': len(d.defs.resolve_all_asset_specs())}))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["heavy"] == []
    assert report["assets"] == 12  # gated_shards (issue 14) added one


def test_status_shows_server_health_and_gpu_memory(home):
    from tests.support.fake_inference_server import fake_inference_server

    with fake_inference_server() as (_fake, url):
        port = url.rsplit(":", 1)[1]
        home.config_path.write_text(f"auto_generate:\n  source: inference\n  host: 127.0.0.1\n  port: {port}\n")
        data = json.loads(run_cli("status", "--json").stdout)
        text = run_cli("status").stdout
    assert data["inference"]["ok"] is True
    assert data["inference"]["gpus"][0]["memory_total_mb"] == 24576
    assert "gpu NVIDIA GeForce RTX 3090: 10240" in text and "healthy" in text


def test_cli_config_shows_effective_values(home, monkeypatch):
    home.config_path.write_text("auto_generate:\n  count: 42\n")
    monkeypatch.setenv("TDM_GATE_LEVEL", "deep")
    data = json.loads(run_cli("config", "--json").stdout)
    assert set(data) == {"source", *SECTIONS}  # every section, with its effective values
    assert data["auto_generate"]["count"] == 42 and data["gate"]["level"] == "deep"
    assert data["inbox"]["settle_sec"] >= 5  # a file is claimed only once settled
    assert "count: 42" in run_cli("config").stdout
