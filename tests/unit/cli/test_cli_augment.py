"""`tdm datasets derive --augment`: re-seeded arithmetic with answers the generator
computed, reordered multi-part prompts that keep each answer with its question, format
variants, and model rewrites through a real local OpenAI-compatible server; every
augmented record names its source (dataset, version, record hash) and passes the gate."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.datasets.records import record_hash
from tdm_dagster.files.atomic import atomic_write_jsonl, read_jsonl
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.generate.generators import get_generator
from tests.support.fixture_data import GSM8K
from tests.support.http_servers import refused_port
from tests.unit.cli.test_cli_datasets import data, tdm


def _dataset(tmp_path, records, name="aug"):
    path = tmp_path / f"{name}.jsonl"
    atomic_write_jsonl(path, records)
    data("create", name)
    data("add", name, str(path))


def _records(tmp_path, name="aug", version=None):
    out = tmp_path / f"{name}-{version}.jsonl"
    data("export", name, str(out), *(["--version", version] if version else []))
    return read_jsonl(out)


def _augmented(records):
    return [record for record in records if "augmented_from" in record.get("metadata", {})]


def _gate_approves_all(records):
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "augmented"), TdmConfig(), level="standard")
    assert outcome.batch_approved and len(outcome.approved_indices) == len(records), outcome.rejected
    return outcome


def test_reseed_draws_new_numbers_with_answers_the_generator_computed(home, tmp_path):
    generator = get_generator("binary")
    source = generator.generate(3, 20, 7)
    _dataset(tmp_path, source)
    derived = data("derive", "aug", "--augment", "reseed", "--augment-seed", "5")
    step = derived["operation"]["steps"][0]
    assert (derived["record_count"], step["added"], step["not_applicable"]) == (40, 20, 0)
    records = _records(tmp_path)
    by_hash = {record_hash(record).hex(): record for record in source}
    for record in _augmented(records):
        origin = record["metadata"]["augmented_from"]
        assert origin["dataset"] == "aug" and origin["version"] == "1.0" and record["metadata"]["augmentation"] == "reseed"
        parent = by_hash[origin["record"]]
        assert record["messages"][0]["content"] != parent["messages"][0]["content"]
        assert record["metadata"]["operation"] == parent["metadata"]["operation"] and record["metadata"]["level"] == 3
        assert generator.check_answer(record, record["messages"][-1]["content"])  # the answer fits the new numbers
        assert not generator.check_answer(record, parent["messages"][-1]["content"]) or record["metadata"]["answer"] == parent["metadata"]["answer"]
        assert generator.generate(3, 1, record["metadata"]["seed"])[0]["messages"] == record["messages"]  # drawn, not edited
    outcome = _gate_approves_all(records)
    assert len(outcome.answers) == 40 and all(verdict.correct for verdict in outcome.answers.values())  # verified, not just kept
    # the same derive again is deterministic; augmenting the augmented version leaves augmented records alone
    again = data("derive", "aug", "--from", "1.0", "--augment", "reseed", "--augment-seed", "5")
    assert again["checksum"] == derived["checksum"]
    third = data("derive", "aug", "--augment", "reseed")["operation"]["steps"][0]
    assert (third["added"], third["already_augmented"]) == (20, 20)


def _two_part_problems(count):
    problems = json.loads(GSM8K.read_text())[: 2 * count]
    return [
        {"messages": [
            {"role": "user", "content": f"Solve both problems.\n1. {first['instruction']}\n2. {second['instruction']}"},
            {"role": "assistant", "content": f"1. {first['output']}\n2. {second['output']}"},
        ], "metadata": {"pair": [2 * n, 2 * n + 1]}}
        for n, (first, second) in enumerate(zip(problems[::2], problems[1::2]))
    ]  # fmt: skip


def test_reorder_keeps_each_answer_with_its_question(home, tmp_path):
    problems = json.loads(GSM8K.read_text())
    answer_of = {" ".join(p["instruction"].split()): " ".join(p["output"].split()) for p in problems[:40]}
    pairs = _two_part_problems(20)
    single = {"messages": [{"role": "user", "content": problems[50]["instruction"]}, {"role": "assistant", "content": problems[50]["output"]}]}
    _dataset(tmp_path, [*pairs, single])
    step = data("derive", "aug", "--augment", "reorder")["operation"]["steps"][0]
    assert (step["added"], step["not_applicable"]) == (20, 1)  # a one-part prompt has nothing to reorder
    for record in _augmented(_records(tmp_path)):
        prompt, reply = (message["content"] for message in record["messages"])
        questions = [" ".join(part.split()) for part in prompt.split("\n1. ", 1)[1].split("\n2. ")]
        answers = [" ".join(part.split()) for part in reply.removeprefix("1. ").split("\n2. ")]
        assert prompt.startswith("Solve both problems.\n1. ") and len(questions) == len(answers) == 2
        assert [answer_of[question] for question in questions] == answers
        assert questions[0] == " ".join(problems[record["metadata"]["pair"][1]]["instruction"].split())  # the order did change


def test_format_variants_keep_replies_and_pass_the_gate(home, tmp_path):
    source = get_generator("binary").generate(2, 12, 3)
    _dataset(tmp_path, source)
    assert data("derive", "aug", "--augment", "format")["operation"]["steps"][0]["added"] == 12
    records = _records(tmp_path)
    replies = {record["messages"][-1]["content"] for record in source}
    for record in _augmented(records):
        assert record["messages"][-1]["content"] in replies
        assert record["messages"][0]["content"] not in {r["messages"][0]["content"] for r in source}
    # the variants pass the gate as a batch of their own (beside their originals their replies
    # repeat, which the diversity suite rightly refuses in one batch)
    outcome = _gate_approves_all(_augmented(records))
    assert all(verdict.correct for verdict in outcome.answers.values()) and len(outcome.answers) == 12


def _point_at(home, base_url):
    address = urlsplit(base_url)
    home.config_path.write_text(f"auto_generate:\n  host: {address.hostname}\n  port: {address.port}\n")


def test_model_augmentation_through_the_inference_server(home, tmp_path, server, fake):
    source = get_generator("binary").generate(2, 10, 9)
    _dataset(tmp_path, source)
    _point_at(home, server[1])

    def paraphrase(messages):
        prompt = messages[-1]["content"]
        if "Convert" in prompt:
            return "Please turn this number into the other base."  # drops the number: refused
        return "Please " + prompt[0].lower() + prompt[1:]

    fake.reply = paraphrase
    step = data("derive", "aug", "--augment", "model")["operation"]["steps"][0]
    converts = sum("Convert" in record["messages"][0]["content"] for record in source)
    assert (step["added"], step["refused"]) == (10 - converts, converts) and 0 < converts < 10
    assert len(fake.chat_requests) == 10
    assert fake.chat_requests[0].body["messages"][0]["role"] == "system"
    records = _records(tmp_path)
    for record in _augmented(records):
        assert record["messages"][0]["content"].startswith("Please ") and record["metadata"]["augmentation"] == "model"
    _gate_approves_all(_augmented(records))


def test_model_augmentation_with_the_server_down_makes_no_version(home, tmp_path):
    _dataset(tmp_path, get_generator("binary").generate(2, 4, 1))
    with refused_port() as url:
        _point_at(home, url)
        failed = tdm("derive", "aug", "--augment", "model", ok=False)
    assert failed.exit_code == 1 and "--augment model: the inference server at http://127.0.0.1:" in failed.output
    assert "Traceback" not in failed.output
    assert [v["version"] for v in data("versions", "aug")] == ["1.0"]
