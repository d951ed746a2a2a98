"""The trainer: assistant-only labels, length-grouped batches, a tiny model that learns,
atomic checkpoints that survive SIGKILL, and queue claims that never double-take a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.home import PRIORITIES, TdmHome
from tdm_dagster.training import checkpoints
from tdm_dagster.queue import claims as queue_claims
from tdm_dagster.training.data import (
    IGNORE_INDEX,
    length_grouped_batches,
    tokenize_examples,
)
from tests.support.training import fast_training_config

REPO = Path(__file__).resolve().parents[3]
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tokenizer():
    from tdm_dagster.training.trainer import load_tokenizer

    return load_tokenizer(fast_training_config())


def _examples(n: int = 64, seed: int = 0, level: int = 1) -> list[dict]:
    return get_generator("binary").generate(level, n, seed)


def _queue_files(home: TdmHome, per_prio: int = 2, n: int = 8) -> list[str]:
    names = []
    for p_index, priority in enumerate(PRIORITIES):
        for i in range(per_prio):
            name = f"batch_{priority}_{i}.jsonl"
            atomic_write_jsonl(home.queue_dir(priority) / name, _examples(n, seed=p_index * 100 + i))
            os.utime(home.queue_dir(priority) / name, (1000 + i, 1000 + i))  # oldest first = i order
            names.append(f"{priority}/{name}")
    return names


def _all_queue_files(home: TdmHome) -> list[str]:
    """Every queue file wherever it is (queue, claims, archive), by original name."""
    found = [f"{p}/{f.name}" for p in PRIORITIES for f in home.queue_dir(p).glob("*.jsonl")]
    for claim_dir in (home.queue_root / ".claimed").glob("*"):
        found += [f.name.replace("__", "/", 1) for f in claim_dir.glob("*__*.jsonl")]
    for arch in (home.root / "archive" / "trained").glob("*"):
        found += [f.name.replace("__", "/", 1) for f in arch.glob("*__*.jsonl")]
    return sorted(found)


# --- data -----------------------------------------------------------------------------


def test_labels_only_on_assistant_tokens(tokenizer):
    example = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Convert 5 to binary."},
            {"role": "assistant", "content": "Answer: 101"},
        ]
    }
    data = tokenize_examples([example], tokenizer, max_length=512)
    (tok,) = data.examples
    labelled = [t for t, label in zip(tok.input_ids, tok.labels) if label != IGNORE_INDEX]
    assert all(label in (IGNORE_INDEX, t) for t, label in zip(tok.input_ids, tok.labels))
    assert tokenizer.decode(labelled) == "Answer: 101<|im_end|>"
    unlabelled = tokenizer.decode([t for t, label in zip(tok.input_ids, tok.labels) if label == IGNORE_INDEX])
    assert "You are terse." in unlabelled and "Convert 5 to binary." in unlabelled
    assert "Answer" not in unlabelled
    full = tokenizer.decode(tok.input_ids)
    assert full.startswith("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n")
    assert full.endswith("<|im_start|>assistant\nAnswer: 101<|im_end|>\n")


def test_truncation_and_examples_without_assistant_tokens(tokenizer):
    user_only = {"messages": [{"role": "user", "content": "hello"}]}
    long_user = {"messages": [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "ok"}]}
    full = tokenize_examples(_examples(4), tokenizer, max_length=4096)
    limit = max(len(e) for e in full.examples)
    data = tokenize_examples(_examples(4) + [user_only, long_user], tokenizer, max_length=limit)
    assert data.dropped == 2  # no assistant turn; assistant cut off by truncation
    assert data.truncated == 1  # only the long one
    assert [e.input_ids for e in data.examples] == [e.input_ids for e in full.examples]
    short = tokenize_examples(_examples(4), tokenizer, max_length=limit - 3)
    assert short.truncated >= 1 and all(len(e) <= limit - 3 for e in short.examples)


def test_length_grouped_batches_pad_only_to_batch_max(tokenizer):
    from tdm_dagster.training.data import collate

    examples = get_generator("binary").generate(1, 40, 1) + get_generator("syllo").generate(3, 40, 2)
    data = tokenize_examples(examples, tokenizer, max_length=1024)
    lengths = [len(e) for e in data.examples]
    batches = length_grouped_batches(lengths, batch_size=8, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # every example once
    assert batches == length_grouped_batches(lengths, batch_size=8, seed=3)  # deterministic
    assert batches != length_grouped_batches(lengths, batch_size=8, seed=3, epoch=1)
    padded_total = real_total = 0
    for b in batches:
        tensors = collate([data.examples[i] for i in b], pad_id=tokenizer.pad_token_id)
        width = tensors["input_ids"].shape[1]
        assert width == max(lengths[i] for i in b) < 1024  # never padded to max_length
        assert int(tensors["attention_mask"].sum()) == sum(lengths[i] for i in b)
        assert (tensors["labels"][tensors["attention_mask"] == 0] == IGNORE_INDEX).all()
        padded_total += width * len(b)
        real_total += sum(lengths[i] for i in b)
    # grouping keeps padding small compared with random batches of mixed skills
    assert padded_total / real_total < 1.15


# --- trainer --------------------------------------------------------------------------


def test_tiny_model_loss_decreases_and_is_deterministic(tmp_path):
    from tdm_dagster.training.trainer import train

    config = fast_training_config(max_steps=30, batch_size=8, max_length=256, seed=7)
    seen = []
    result = train(_examples(64), config, tmp_path / "a", progress=lambda s, t, l: seen.append((s, t)),
                   sources={"queue_files": ["normal/x.jsonl"], "dataset_version": "v1"})
    assert result.steps == 30 and len(result.loss_curve) == 30 and seen[-1] == (30, 30)
    first, last = sum(result.loss_curve[:5]) / 5, sum(result.loss_curve[-5:]) / 5
    assert last < first * 0.6, result.loss_curve
    assert result.real_tokens > 0 and result.tokens_per_s > 0 and result.device == "cpu"
    info = checkpoints.latest(tmp_path / "a")
    assert info is not None and str(info.path) == result.checkpoint_path and info.name == "checkpoint-30"
    assert info.meta["step"] == 30 and info.meta["sources"]["dataset_version"] == "v1"
    assert info.meta["metrics"]["real_tokens"] == result.real_tokens and "created_at" in info.meta
    assert (info.path / "model.safetensors").exists() and (info.path / "tokenizer.json").exists()
    # the checkpoint loads back as a model
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(info.path).config.num_hidden_layers == 2
    again = train(_examples(64), fast_training_config(max_steps=5, batch_size=8, max_length=256, seed=7), tmp_path / "b")
    assert again.loss_curve == result.loss_curve[:5]


def test_refuses_fewer_than_min_examples(tmp_path):
    from tdm_dagster.training.trainer import (
        NotEnoughExamplesError,
        TrainingError,
        train,
    )

    with pytest.raises(NotEnoughExamplesError, match="min_examples is 100"):
        train(_examples(10), fast_training_config(min_examples=100), tmp_path)
    no_assistant = [{"messages": [{"role": "user", "content": "hi"}]}] * 5
    with pytest.raises(NotEnoughExamplesError, match="assistant tokens"):
        train(no_assistant, fast_training_config(min_examples=1), tmp_path)
    assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())
    try:
        import peft  # noqa: F401
    except ImportError:
        with pytest.raises(TrainingError, match="peft"):
            train(_examples(4), fast_training_config(lora=True, max_steps=1), tmp_path)


# --- checkpoints ----------------------------------------------------------------------


def test_checkpoint_listing_ignores_temp_and_incomplete(tmp_path):
    checkpoints.save_checkpoint(tmp_path, 5, metrics={"loss": 1.0})
    checkpoints.save_checkpoint(tmp_path, 10, metrics={"loss": 0.5})
    (tmp_path / ".checkpoint-15.abc.tmp").mkdir()  # a killed writer's leftover
    (tmp_path / "checkpoints" / "checkpoint-20").mkdir()  # not ours: no tdm_checkpoint.json
    assert [c.name for c in checkpoints.list_checkpoints(tmp_path)] == ["checkpoint-5", "checkpoint-10"]
    assert checkpoints.latest(tmp_path).step == 10
    with pytest.raises(FileExistsError):
        checkpoints.save_checkpoint(tmp_path, 10)
    assert checkpoints.remove_stale_temp(tmp_path, older_than_s=0) == [tmp_path / ".checkpoint-15.abc.tmp"]
    assert checkpoints.latest(tmp_path / "nothing") is None


_KILLED_TRAINER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from tdm_dagster.home import TdmHome
    from tdm_dagster.training import checkpoints
    from tdm_dagster.training.trainer import train_from_queue
    from tests.support.training import fast_training_config

    marker = {marker!r}
    real_save = checkpoints.save_checkpoint
    def before_rename(tmp, final):
        open(marker, "w").write(str(tmp))
        time.sleep(120)  # the parent SIGKILLs us here: temp written, not yet renamed
    checkpoints._rename_into_place = before_rename
    train_from_queue({home!r}, fast_training_config(max_steps=3, batch_size=4, max_length=128),
                     {out!r}, max_files=3)
    """
)


def test_sigkill_during_checkpoint_write_loses_nothing(home, tmp_path):
    names = _queue_files(home, per_prio=2, n=6)
    out, marker = tmp_path / "run1", tmp_path / "marker"
    script = _KILLED_TRAINER.format(repo=str(REPO), marker=str(marker), home=str(home.root), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "trainer never reached the checkpoint rename"
            time.sleep(0.05)
        # claimed, trained, checkpoint written to temp: now kill it hard
        assert len(queue_claims.list_claims(home)) == 1
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert Path(marker.read_text()).is_dir()  # the temp folder is there...
    assert checkpoints.list_checkpoints(out) == []  # ...but no checkpoint-N is visible
    visible = list((out / "checkpoints").glob("checkpoint-*"))
    assert all((p / checkpoints.META_FILE).exists() for p in visible) and not visible
    assert _all_queue_files(home) == sorted(names)  # nothing lost: 3 files claimed, 3 still queued
    (stale,) = queue_claims.stale_claims(home)
    assert [f.name for f in stale.files] == ["batch_high_0.jsonl", "batch_high_1.jsonl", "batch_normal_0.jsonl"]
    assert queue_claims.claimable_examples(home) == 3 * 6
    queue_claims.release(stale)
    assert queue_claims.list_claims(home) == [] and queue_claims.claimable_examples(home) == 6 * 6
    assert _all_queue_files(home) == sorted(names)


def test_claim_train_archive(home, tmp_path):
    from tdm_dagster.training.trainer import train_from_queue

    names = _queue_files(home, per_prio=1, n=6)
    assert queue_claims.claimable_examples(home) == 18
    assert queue_claims.stale_claims(home) == []
    _result, dest = train_from_queue(home, fast_training_config(max_steps=2, batch_size=4, max_length=128), tmp_path / "r")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["checkpoint"] == "r__checkpoint-2" and manifest["examples"] == 18
    assert [f["name"] for f in manifest["files"]] == [n.split("/")[1] for n in names]
    meta = checkpoints.latest(tmp_path / "r").meta
    assert meta["sources"]["queue_files"] == names
    assert queue_claims.claimable_examples(home) == 0 and queue_claims.list_claims(home) == []
    assert _all_queue_files(home) == sorted(names)
    assert train_from_queue(home, fast_training_config(), tmp_path / "r2") is None  # empty queue


def test_run_budget_trains_high_first_and_leaves_the_rest_queued(home, tmp_path):
    from tdm_dagster.training.trainer import TrainingError, train_from_queue

    _queue_files(home, per_prio=1, n=6)
    low = home.queue_dir("low") / "batch_low_0.jsonl"
    low_bytes = low.read_bytes()
    config = fast_training_config(max_steps=2, batch_size=4, max_length=128, max_examples_per_run=8)
    _result, dest = train_from_queue(home, config, tmp_path / "r")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["examples"] == 8 == checkpoints.latest(tmp_path / "r").meta["metrics"]["examples"]
    assert [(f["name"], f["examples"]) for f in manifest["files"]] == [("batch_high_0.jsonl", 6), ("batch_normal_0.jsonl", 2)]
    assert low.read_bytes() == low_bytes and queue_claims.claimable_examples(home) == 18 - 8
    assert (home.queue_dir("normal") / manifest["files"][1]["rest_queued_as"]).is_file()
    with pytest.raises(TrainingError, match="max_examples_per_run is 4, below training.min_examples"):
        train_from_queue(home, fast_training_config(max_examples_per_run=4, min_examples=5), tmp_path / "r2")
    assert queue_claims.claimable_examples(home) == 10 and queue_claims.list_claims(home) == []


def test_failed_training_releases_claim(home, tmp_path):
    from tdm_dagster.training.trainer import (
        NotEnoughExamplesError,
        train_from_queue,
    )

    names = _queue_files(home, per_prio=1, n=3)
    with pytest.raises(NotEnoughExamplesError):
        train_from_queue(home, fast_training_config(min_examples=1000), tmp_path / "r")
    assert queue_claims.list_claims(home) == [] and queue_claims.claimable_examples(home) == 9
    assert _all_queue_files(home) == sorted(names)


_CLAIMER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {repo!r})
    from tdm_dagster.home import TdmHome
    from tdm_dagster.queue import claims as queue_claims
    home = TdmHome.from_env({home!r})
    while time.time() < {start}:
        pass
    got = []
    while True:
        c = queue_claims.claim(home, max_files=1)
        if c is None:
            break
        got += [(f.priority, f.name) for f in c.files]
    print(json.dumps(got))
    """
)


def test_concurrent_claims_never_share_a_file(home):
    for priority in PRIORITIES:
        for i in range(40):
            (home.queue_dir(priority) / f"b{i:03d}.jsonl").write_text('{"messages": []}\n')
    total = 3 * 40
    start = time.time() + 1.0
    script = _CLAIMER.format(repo=str(REPO), home=str(home.root), start=start)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) for _ in range(2)]
    thread_got: list[list] = [[], []]

    def thread_claimer(slot: int) -> None:
        while time.time() < start:
            time.sleep(0.001)
        while (c := queue_claims.claim(home, max_files=2)) is not None:
            thread_got[slot] += [(f.priority, f.name) for f in c.files]

    threads = [threading.Thread(target=thread_claimer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs] + thread_got
    taken = [tuple(x) for got in results for x in got]
    assert len(taken) == len(set(taken)) == total  # every file exactly once, by exactly one claimer
    claims = queue_claims.list_claims(home)
    assert sum(len(c.files) for c in claims) == total
    stale = queue_claims.stale_claims(home)
    # the two claimer subprocesses have exited: their claims are stale; ours (this pid) are not
    assert {c.info["pid"] for c in stale} == {p.pid for p, got in zip(procs, results) if got}
    assert all(c.info["pid"] != os.getpid() for c in stale)
    assert queue_claims.stale_claims(home, older_than_s=3600) == []
    for c in stale:
        queue_claims.release(c)
    assert queue_claims.claimable_examples(home) == sum(len(r) for r, p in zip(results, procs))


def test_lora_training_ends_in_a_servable_whole_model(tmp_path):
    """LoRA (peft) trains the adapters; the final checkpoint is merged, so `tdm serve`
    loads it without the base weights."""
    pytest.importorskip("peft")
    from tdm_dagster.serving.model import load_checkpoint
    from tdm_dagster.training.trainer import train

    examples = get_generator("binary").generate(1, 32, 5)
    result = train(examples, fast_training_config(max_steps=12, lora=True, learning_rate=1e-2, batch_size=8, max_length=256), tmp_path)
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert not (Path(result.checkpoint_path) / "adapter_config.json").exists()
    reply = load_checkpoint(result.checkpoint_path).generate([{"role": "user", "content": "1 + 1"}], max_tokens=4, temperature=0.0)
    assert reply["completion_tokens"] >= 1
