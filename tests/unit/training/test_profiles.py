"""Data profiles on real records (GSM8K, GPTeacher roleplay): what emoji_think and
regime3 make of a reply, a user's own profile found by decorator, entry point and
module:function, and a real tiny training run whose checkpoint lineage records the profile."""

from __future__ import annotations

import copy
import json
import sys

import pytest

from tdm_dagster.config.sections import ProfileConfig
from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.gate.schemas import as_chat_record
from tdm_dagster.training.profiles import ProfileError, apply_profile, find_profile, register_profile, unregister_profile
from tdm_dagster.training.profiles.reasoning import read_reasoning
from tests.support.fixture_data import GSM8K, ROLEPLAY
from tests.support.training import fast_training_config


def _chats(path, count):
    return [as_chat_record(record, "instruction_v1") for record in json.loads(path.read_text())[:count]]


def _reply(example):
    return example["messages"][-1]["content"]


def test_emoji_think_marks_steps_answer_and_stop_on_gsm8k():
    examples = _chats(GSM8K, 200)
    before = copy.deepcopy(examples)
    out, summary = apply_profile(examples, "emoji_think")
    assert examples == before  # the profile never changes what it is given
    assert summary == {"name": "emoji_think", "options": {}, "examples": 200, "changed": 200}
    assert _reply(out[0]) == (
        "🤔 Natalia sold 48/2 = 24 clips in May.\n🤔 Natalia sold 48+24 = 72 clips altogether in April and May.\n✅ 72\n🛑"
    )
    for example, changed in zip(examples, out):
        lines = _reply(changed).split("\n")
        assert lines[-1] == "🛑" and lines[-2].startswith("✅ ")
        source_lines = [line for line in _reply(example).splitlines() if line.strip()]
        assert all(line.startswith("🤔 ") for line in lines[:-2])
        assert len(lines) - 2 in (len(source_lines), len(source_lines) - 1)  # every step kept (the last line too when it computes)
        assert changed["messages"][0] == example["messages"][0]  # the question is untouched
    assert apply_profile(out, "emoji_think")[1]["changed"] == 0  # applied twice: nothing more changes


def test_regime3_writes_computations_and_keeps_the_answer():
    examples = _chats(GSM8K, 200)
    out, _ = apply_profile(examples, "regime3")
    assert _reply(out[0]) == "⊢ 48/2=24\n⊢ 48+24=72\n∴ 72\n∎"
    emoji, _ = apply_profile(examples, "emoji_think")
    for symbolic, marked, example in zip(out, emoji, examples):
        conclusion = [line for line in _reply(symbolic).split("\n") if line.startswith("∴ ")]
        assert conclusion == ["∴ " + _reply(marked).split("\n")[-2].removeprefix("✅ ")]
        assert read_reasoning(_reply(example)).answer in _reply(symbolic)


def test_profiles_on_prose_replies_keep_the_text():
    examples = _chats(ROLEPLAY, 50)
    for name, answer_mark, end in (("emoji_think", "✅ ", "🛑"), ("regime3", "∴ ", "∎")):
        out, summary = apply_profile(examples, name)
        assert summary["changed"] == 50
        for example, changed in zip(examples, out):
            last = [line.strip() for line in _reply(example).splitlines() if line.strip()][-1]
            assert _reply(changed).endswith(f"{answer_mark}{last}\n{end}")


def test_a_users_profile_by_decorator_reference_and_entry_point(tmp_path, monkeypatch):
    examples = _chats(GSM8K, 5)

    @register_profile("shout_test")
    def shout(example, suffix="!"):
        return {**example, "messages": [*example["messages"][:-1], {"role": "assistant", "content": _reply(example).upper() + suffix}]}

    try:
        out, summary = apply_profile(examples, "shout_test", {"suffix": "!!"})
        assert _reply(out[0]) == _reply(examples[0]).upper() + "!!" and summary["options"] == {"suffix": "!!"}
        with pytest.raises(ValueError, match="already registered"):
            register_profile("shout_test")(lambda example: example)
    finally:
        unregister_profile("shout_test")

    (tmp_path / "my_profiles.py").write_text(
        "def reverse(example):\n"
        "    return {**example, 'messages': [dict(m, content=m['content'][::-1]) for m in example['messages']]}\n"
        "def broken(example):\n    return 'not an example'\n"
    )
    dist = tmp_path / "my_profiles-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-profiles\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tdm_dagster.profiles]\nreversed_test = my_profiles:reverse\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _reply(apply_profile(examples, "my_profiles:reverse")[0][0]) == _reply(examples[0])[::-1]
    assert find_profile("reversed_test") is sys.modules["my_profiles"].reverse
    with pytest.raises(ProfileError, match="profile 'my_profiles:broken' returned a str for example 0, not a chat example"):
        apply_profile(examples, "my_profiles:broken")
    with pytest.raises(ProfileError, match=r"no profile named 'emoji_thinking' \(known: emoji_think, regime3"):
        find_profile("emoji_thinking")
    with pytest.raises(ProfileError, match="cannot be loaded: ModuleNotFoundError"):
        find_profile("no_such_module:profile")


def test_a_training_run_applies_the_profile_and_its_lineage_records_it(home, tmp_path):
    pytest.importorskip("torch")
    from tdm_dagster.queue import claims as queue_claims
    from tdm_dagster.training import checkpoints
    from tdm_dagster.training.trainer import train_from_queue

    atomic_write_jsonl(home.queue_dir("normal") / "gsm8k_part.jsonl", _chats(GSM8K, 12))
    config = fast_training_config(max_steps=2, batch_size=4, max_length=128)
    with pytest.raises(ProfileError, match="no profile named 'nope'"):
        train_from_queue(home, config, tmp_path / "bad", profile=ProfileConfig(name="nope"))
    assert queue_claims.claimable_examples(home) == 12  # a failed profile gives the claim back
    _result, archived = train_from_queue(home, config, tmp_path / "run", profile=ProfileConfig(name="emoji_think"))
    profile = {"name": "emoji_think", "options": {}, "examples": 12, "changed": 12}
    assert checkpoints.latest(tmp_path / "run").meta["sources"]["lineage"]["profile"] == profile
    assert json.loads((archived / "manifest.json").read_text())["lineage"]["profile"] == profile
