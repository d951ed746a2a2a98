"""The exit codes of `tdm validate`, `generate`, `ingest` and `evaluate` (docs/reference/cli.md, "Exit
codes"): 0 did what was asked, 1 ran and the outcome is a failure or a refusal, 2 a usage
or config error; under --json stdout carries one JSON object whatever the code."""

import json
import os
import time

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main

CHAT = {"messages": [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "Two plus two is four."}]}
BAD_CONFIG = "quality:\n  max_tokens: lots\n"


def tdm(*args: str):
    return CliRunner().invoke(main, list(args))


def outcome(result) -> dict:
    """The one JSON object on stdout."""
    return json.loads(result.stdout)


def test_validate(home, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"instruction": f"Write {n} in words.", "input": "", "output": f"{n} is written as a word."}) + "\n" for n in range(30)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1]\n[2]\n")
    missing = tmp_path / "missing.jsonl"
    codes = {
        "approved": tdm("validate", str(good), "--level", "quick", "--json"),
        "rejected": tdm("validate", str(bad), "--json"),
        "missing": tdm("validate", str(missing), "--json"),
        "unknown spec": tdm("validate", str(good), "--spec", "chat_v9", "--json"),
    }
    assert {name: result.exit_code for name, result in codes.items()} == {"approved": 0, "rejected": 1, "missing": 2, "unknown spec": 2}
    assert outcome(codes["approved"])["overall_pass"] is True and outcome(codes["rejected"])["overall_pass"] is False
    assert outcome(codes["missing"])["error"] == f"file not found: {missing}"
    assert "unknown schema spec" in outcome(codes["unknown spec"])["error"]
    home.config_path.write_text(BAD_CONFIG)
    config_error = tdm("validate", str(good), "--json")
    assert config_error.exit_code == 2 and "quality.max_tokens" in outcome(config_error)["error"]


def test_generate(home, dagster_home):
    home.config_path.write_text("auto_generate:\n  enabled: false\n")
    skipped = tdm("generate", "--json")
    assert skipped.exit_code == 0 and outcome(skipped) == {"ran": False, "reason": "auto_generate.enabled is false"}
    queued = tdm("generate", "--force", "--count", "25", "--seed", "3", "--json")
    assert queued.exit_code == 0, queued.output[-3000:]
    assert outcome(queued)["queued"] is True
    home.config_path.write_text("quality:\n  max_tokens: 5\n")
    rejected = tdm("generate", "--force", "--count", "3", "--json")
    assert rejected.exit_code == 1 and outcome(rejected)["success"] is False and outcome(rejected)["queued"] is False
    home.config_path.write_text(BAD_CONFIG)
    config_error = tdm("generate", "--force", "--json")
    assert config_error.exit_code == 2 and "quality.max_tokens" in outcome(config_error)["error"]


def test_ingest(home, dagster_home):
    nothing = tdm("ingest", "--json")
    assert nothing.exit_code == 0 and outcome(nothing) == []
    home.inbox_dir.mkdir(exist_ok=True)
    same = home.inbox_dir / "same.jsonl"
    same.write_text(json.dumps(CHAT) + "\n" + json.dumps(CHAT) + "\n")  # one duplicate in two: refused
    home.config_path.write_text("gate:\n  on_batch_failure:\n    inbox: reject\n")  # else the first record is salvaged and queued
    old = time.time() - 120
    os.utime(same, (old, old))
    rejected = tdm("ingest", "--json")
    assert rejected.exit_code == 1, rejected.output[-3000:]
    [file] = outcome(rejected)
    assert file["file"] == "same.jsonl" and file["queued"] is False
    home.config_path.write_text(BAD_CONFIG)
    config_error = tdm("ingest", "--json")
    assert config_error.exit_code == 2 and "quality.max_tokens" in outcome(config_error)["error"]


@pytest.mark.parametrize("as_json", [True, False])
def test_evaluate(home, dagster_home, as_json):
    flag = ("--json",) if as_json else ()
    none_yet = tdm("evaluate", *flag)
    assert none_yet.exit_code == 1 and "no checkpoint yet: run `tdm train` first" in none_yet.stderr
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("checkpoints", ["ckpt_20260101_000000_000000"])  # named, never trained
    unknown = tdm("evaluate", "ckpt_nosuch", *flag)
    assert unknown.exit_code == 2 and "no checkpoint named 'ckpt_nosuch' (the newest is ckpt_20260101_000000_000000)" in unknown.stderr
    failed = tdm("evaluate", *flag)
    assert failed.exit_code == 1 and "no checkpoint was written for ckpt_20260101_000000_000000" in failed.stderr
    assert "Traceback" not in failed.output
    if as_json:
        assert outcome(none_yet) == {"success": False, "key": None, "error": "no checkpoint yet: run `tdm train` first"}
        assert "no checkpoint named 'ckpt_nosuch'" in outcome(unknown)["error"]
        assert outcome(failed)["key"] == "ckpt_20260101_000000_000000" and outcome(failed)["success"] is False
        assert "no checkpoint was written for ckpt_20260101_000000_000000" in outcome(failed)["error"]
    else:
        assert none_yet.stdout == unknown.stdout == failed.stdout == ""
