"""`tdm train --profile` and config's `profile.name` through a real Dagster run: the
checkpoint's lineage (and `tdm lineage`) names the profile its data went through."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.gate.schemas import as_chat_record
from tests.support.fixture_data import GSM8K


def _tdm(*args, code=0):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_train_applies_the_profile_chosen_per_run_or_in_config(home, dagster_home):
    pytest.importorskip("torch")
    home.config_path.write_text(
        "training:\n  max_steps: 2\n  min_examples: 1\n  batch_size: 4\n  max_length: 128\n  max_examples_per_run: 8\n"
        "profile:\n  name: emoji_think\n"
    )
    chats = [as_chat_record(record, "instruction_v1") for record in json.loads(GSM8K.read_text())[:16]]
    atomic_write_jsonl(home.queue_dir("normal") / "a.jsonl", chats[:8])
    atomic_write_jsonl(home.queue_dir("normal") / "b.jsonl", chats[8:])

    refused = _tdm("train", "--profile", "emoji_thinking", code=2)
    assert "no profile named 'emoji_thinking'" in refused.output

    per_run = json.loads(_tdm("train", "--profile", "regime3", "--json").stdout)
    from_config = json.loads(_tdm("train", "--json").stdout)
    for trained, name in ((per_run, "regime3"), (from_config, "emoji_think")):
        assert trained["profile"] == name
        found = json.loads(_tdm("lineage", trained["path"], "--json").stdout)
        assert found["profile"] == {"name": name, "options": {}, "examples": 8, "changed": 8}
        assert f"data profile {name}: changed 8 of 8 examples" in _tdm("lineage", trained["path"]).stdout
