"""Rule margins: a reply that passes a content rule only narrowly is kept with a WARNING
and scores a tier lower than the same reply with room to spare; over the threshold it is
rejected as before; on real data the warnings are rare and reject nothing; the sharded
judge scores exactly as the in-process gate does (real gate runs on real records)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.scoring import TIERS, tier
from tdm_dagster.gate.validate_file import validate_file
from tdm_dagster.ingest.load import load_file
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS
from tests.support.sharded_gate import sharded_and_in_process

TIER_NAMES = [name for name, _ in TIERS]

FRACS = QualitySettings().top_ngram_char_fracs
NEAR = QualitySettings().near_threshold
PHRASE = "the storm is coming"


def _chat(prompt: str, reply: str, **metadata) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], "metadata": metadata}


def _alpaca_chats(path: Path, count: int) -> list[dict]:
    return [_chat(r["instruction"] + ("\n" + r["input"] if r["input"] else ""), r["output"]) for r in json.loads(path.read_text())[:count]]


def _closeness(text: str) -> float:
    """The highest top n-gram character fraction over its threshold (datatrove's rule)."""
    words = text.split()
    best = 0.0
    for n, frac in FRACS.items():
        gram, count = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)[0]
        if count > 1:
            best = max(best, count * (sum(map(len, gram)) + n - 1) / len(text) / frac)
    return best


def _repeated(base: str, low: float, high: float) -> str:
    """``base`` (a real roleplay reply) followed by PHRASE as often as puts its closeness in (low, high]."""
    for times in range(1, 200):
        text = f"{base} {' '.join([PHRASE] * times)}. The answer is 42."
        if low < _closeness(text) <= high:
            return text
    raise AssertionError(f"no repetition count puts the reply in ({low}, {high}]")


@pytest.fixture(scope="module")
def base() -> str:
    """A real GPTeacher reply of 100+ words whose own repetition is far from any threshold."""
    replies = [r["output"] for r in json.loads(ROLEPLAY.read_text())]
    return next(r for r in replies if 110 <= len(r.split()) <= 200 and _closeness(r) < 0.3)


def _gate(records: list[dict], config: TdmConfig = TdmConfig()):
    """``records`` after 40 real GSM8K chats, so one rejection does not sink the batch."""
    padding = _alpaca_chats(GSM8K, 40)
    outcome = run_gate(GateInput.from_records(padding + records, "chat_sft_v1", "m"), config, level="standard")
    assert outcome.batch_approved, outcome.report["recommendation"]
    return [(outcome.scores.get(40 + i), outcome.issues.get(40 + i, [])) for i in range(len(records))]


def test_a_repetition_just_under_its_threshold_warns_and_costs_a_tier(base):
    clean, near, over = _repeated(base, 0.0, 0.6), _repeated(base, 0.85, 0.97), _repeated(base, 1.05, 1.3)
    verified = {"reference_answer": "42"}
    results = _gate([
        _chat("Tell me a story.", clean), _chat("Tell me a story.", near), _chat("Tell me a story.", over),
        _chat("Tell me a tale.", clean, **verified), _chat("Tell me a tale.", near, **verified),
    ])  # fmt: skip
    (clean_score, clean_issues), (near_score, near_issues), (over_score, over_issues) = results[:3]
    assert clean_issues == [] and tier(clean_score) == "silver"  # unverified, with room to spare
    [warning] = near_issues
    assert (warning.code, warning.severity, warning.field) == ("content.near_repetition", "WARNING", "messages[1].content")
    assert any("-gram character fraction rule narrowly" in warning.message and f"rejected over {frac:g}" in warning.message for frac in FRACS.values())
    assert warning.suggestion
    assert near_score < clean_score and tier(near_score) == "bronze"
    [rejection] = [i for i in over_issues if i.rejects]
    assert over_score is None and rejection.code.startswith("content.gopher_top_")  # as before margins
    (verified_clean, _), (verified_near, issues) = results[3:]
    assert tier(verified_clean) == "gold" and tier(verified_near) == "silver"
    assert [i.code for i in issues] == ["content.near_repetition"]


def test_mixed_alnum_margin_warns_unless_a_verifier_judged_the_answer():
    run = "Set l1 and l2 to zero first, then add the digits."  # a plain run of 7 words, 2 mixed: 0.286 of 0.34
    clean = "Set l1 to zero first, then add the digits one by one."
    over = "Set l1 l2 l3 to zero now"
    results = _gate([
        _chat("How do I start?", run), _chat("How do I start?", clean), _chat("How do I start?", over),
        _chat("What is the sum?", f"{run} The answer is 42.", reference_answer="42"),
    ])  # fmt: skip
    (run_score, run_issues), (clean_score, clean_issues), (over_score, over_issues), (_, verified_issues) = results
    [warning] = run_issues
    assert warning.code == "content.near_mixed_alnum" and "0.286" in warning.message and "rejected over 0.34" in warning.message
    assert clean_issues == [] and run_score < clean_score
    assert over_score is None and [i.code for i in over_issues] == ["content.mixed_alnum_words"]
    assert verified_issues == []  # the verifier decided: the text-quality rules and their margin stand aside


def test_margins_off_and_a_bad_setting_is_refused(base):
    near = _repeated(base, 0.85, 0.97)
    off = replace(TdmConfig(), quality=QualitySettings(near_threshold=1.0))
    [(score, issues)] = _gate([_chat("Tell me a story.", near)], off)
    assert issues == [] and tier(score) == "silver"
    with pytest.raises(ValueError, match="near_threshold"):
        QualitySettings(near_threshold=1.5)


@pytest.mark.parametrize(
    ("path", "most"), [(GSM8K, 0.01), (ROLEPLAY, 0.005), (SEED_TASKS, 0.01)], ids=["gsm8k", "gpteacher", "seed_tasks"]
)
def test_real_data_rarely_warns_and_margins_reject_nothing(path, most):
    """Measured on these subsets: GSM8K 7 of 1,500 records (0.47 %; none near a
    broken-reply rule), GPTeacher 0 of 1,000, seed tasks 1 of 175 (0.57 %); each margin
    WARNING costs its record exactly one tier."""
    with_margins = validate_file(path, TdmConfig(), level="standard")
    without = validate_file(path, replace(TdmConfig(), quality=QualitySettings(near_threshold=1.0)), level="standard")
    assert with_margins["totals"]["accepted"] == without["totals"]["accepted"]
    margin_codes = ("content.near_repetition", "content.near_mixed_alnum", "content.near_broken")
    warned = {issue["line"] for issue in with_margins["issues"] if issue["code"] in margin_codes}
    records = with_margins["totals"]["records"]
    assert len(warned) / records <= most, (len(warned), records)
    outcomes = [run_gate(GateInput.from_loaded(load_file(path), "m"), config, level="standard")
                for config in (TdmConfig(), replace(TdmConfig(), quality=QualitySettings(near_threshold=1.0)))]  # fmt: skip
    margins = Counter(p for p, found in outcomes[0].issues.items() for issue in found if issue.code in margin_codes)
    assert outcomes[0].scores.keys() == outcomes[1].scores.keys()
    for position, score in outcomes[1].scores.items():  # each margin costs one tier, down to raw
        expected = min(len(TIER_NAMES) - 1, TIER_NAMES.index(tier(score)) + margins[position])
        assert TIER_NAMES.index(tier(outcomes[0].scores[position])) == expected, position


def test_the_sharded_judge_scores_as_the_in_process_gate(base, tmp_path):
    """The distributed path (sketch, shuffle, judge: what Ray runs, called here in turn)
    gives every record the same issues and score as one in-process run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    gsm = json.loads(GSM8K.read_text())[:60]
    near = {"instruction": "Tell me a story.", "input": "", "output": _repeated(base, 0.85, 0.97)}
    paths = []
    for number, shard in enumerate([gsm[:30] + [near], gsm[30:]]):
        paths.append(tmp_path / f"part-{number}.parquet")
        pq.write_table(pa.Table.from_pylist(shard), paths[-1])
    judged, in_process = sharded_and_in_process(paths, TdmConfig(), "standard")
    assert judged == in_process
    assert in_process["part-0.parquet:31"][1][0][0] == "content.near_repetition"
