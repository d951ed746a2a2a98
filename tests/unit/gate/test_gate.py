"""The gate's levels, severities, scores, tiers and batch metrics, on real suites."""

import pytest

from dataclasses import replace

from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.outcome import decide
from tdm_dagster.gate.quality import run_quality
from tdm_dagster.gate.run import GateInput, run_gate, suites_for
from tdm_dagster.gate.schemas import schema_gate
from tdm_dagster.gate.scoring import example_score, tier
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.records.issues import RecordIssue

CONFIG = TdmConfig()
SETTINGS = CONFIG.quality


def with_gate(**gate) -> TdmConfig:
    return replace(CONFIG, gate=replace(CONFIG.gate, **gate))


def gate(records, spec="chat_sft_v1", config=CONFIG, **options):
    return run_gate(GateInput.from_records(records, spec), config, **options)


def binary_batch(n=40, seed=1):
    return get_generator("binary").generate(3, n, seed)


def test_levels_choose_suites():
    assert suites_for("quick") == ("format",)
    assert set(suites_for("standard")) == {"format", "length", "diversity", "balance", "content"}
    with pytest.raises(ValueError, match="not one of quick, standard, deep"):
        suites_for("thorough")


def test_quick_level_checks_structure_only():
    records = binary_batch()
    records[0]["messages"][1]["content"] = "As an AI language model, I cannot do arithmetic."  # content, not format
    quick = gate(records, level="quick")
    assert set(quick.report["results"]) == {"format"}
    assert quick.report["records"]["approved"] == 40
    standard = gate(records, level="standard")
    assert 0 in standard.rejected
    assert standard.report["level"] == "standard"


def test_warning_keeps_record_and_lowers_score():
    records = binary_batch()
    schema = schema_gate(records, "chat_sft_v1")
    suites = run_quality(schema.conversations, SETTINGS)
    warning = RecordIssue("dedup", "dedup.near_duplicate", "near duplicate of line 2", "messages", severity="WARNING")
    outcome = decide(schema, suites, records=records, extra_issues={3: [warning]})
    assert 3 in outcome.approved_indices
    assert outcome.scores[3] < outcome.scores[4]
    assert outcome.report["warnings"] == {"dedup.near_duplicate": 1}
    assert sum(outcome.report["tiers"].values()) == outcome.report["records"]["approved"]


def test_error_from_extra_findings_rejects():
    records = binary_batch()
    schema = schema_gate(records, "chat_sft_v1")
    leak = RecordIssue("leakage", "leakage.ngram", "overlaps eval item gsm8k:5", "messages")
    outcome = decide(schema, run_quality(schema.conversations, SETTINGS), records=records, extra_issues={7: [leak]})
    assert outcome.rejected[7] == [leak]
    assert outcome.report["records"]["approved"] == 39


def test_validity_under_threshold_rejects_the_batch():
    records = binary_batch() + [{"messages": "broken"}] * 5  # 5 of 45 invalid: validity 0.889
    outcome = gate(records)
    assert outcome.report["overall_pass"] is False
    assert "validity 0.889 < 0.95" in outcome.report["recommendation"]
    assert outcome.report["records"]["approved"] == 0
    assert outcome.report["records"]["rejected"] == 45
    lenient = gate(records, config=with_gate(min_validity=0.8, min_overall=0.8))
    assert lenient.report["overall_pass"] is True
    assert lenient.report["records"]["approved"] == 40


def test_metrics_are_fractions_and_consistency_sees_mixed_specs():
    records = binary_batch(20)
    alpaca = [{"instruction": f"Say {w}", "input": "", "output": f"The word is {w}."} for w in ("cat", "dog")]
    specs = ["chat_sft_v1"] * 20 + ["instruction_v1"] * 2
    outcome = gate(records + alpaca, specs, with_gate(min_completeness=0, min_consistency=0, min_validity=0, min_overall=0))
    metrics = outcome.report["metrics"]
    assert metrics["consistency"] == pytest.approx(20 / 22, abs=1e-3)
    assert all(0 <= value <= 1 for value in metrics.values() if value is not None)
    assert outcome.report["records"]["approved"] == 22


def test_source_trust_and_tiers():
    human = {"messages": [], "metadata": {"source": "curated", "human_reviewed": True}}
    model = {"messages": [], "metadata": {"source": "inference"}}
    assert example_score(human, []) > example_score(model, [])
    assert tier(example_score(human, [])) == "gold"
    warn = RecordIssue("x", "x.y", "m", "", severity="WARNING")
    assert tier(example_score(model, [warn], model_judged=True)) == "bronze"
    assert tier(example_score(model, [warn, warn], model_judged=True)) == "raw"
    assert example_score(model, [RecordIssue("x", "x.y", "m", "")]) == 0.0
    assert (tier(0.95), tier(0.7), tier(0.5), tier(0.49)) == ("gold", "silver", "bronze", "raw")


def test_deep_level_is_part_of_run_gate_and_cites_record_keys():
    records = binary_batch(30)
    records.append(records[4])  # an exact copy of line 5, at line 31
    named = run_gate(GateInput.from_records(records, "chat_sft_v1", "b7"), CONFIG, level="deep")
    assert set(named.deep) == {"duplicates", "leakage"} and named.level == "deep"
    [copy] = named.deep["duplicates"][30]
    assert copy.code == "dedup.exact_duplicate" and "exact duplicate of b7:5" in copy.message
    assert copy in named.rejected[30]
    assert gate(records, level="standard").deep == {}  # below deep nothing is compared


def test_deep_level_compares_with_queued_data_only_when_asked(home):
    from tdm_dagster.gate.deep import remember_queued

    records = binary_batch(30)
    remember_queued(home, "old", [records[2]["messages"]], CONFIG.gate.near_duplicate_threshold)
    against = run_gate(GateInput.from_records(records, "chat_sft_v1", "new"), CONFIG, level="deep", queued_in=home)
    assert [i.code for i in against.deep["duplicates"][2]] == ["dedup.exact_duplicate_of_queued"]
    assert "duplicate of queued old:1" in against.rejected[2][0].message
    alone = run_gate(GateInput.from_records(records, "chat_sft_v1", "new"), CONFIG, level="deep")
    assert 2 not in alone.deep["duplicates"]


def test_records_read_from_a_file_are_keyed_by_file_and_line(tmp_path):
    import json

    from tdm_dagster.ingest.load import load_file

    records = binary_batch(3)
    path = tmp_path / "drop.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [records[0], records[1], records[0]]), encoding="utf-8")
    gate_input = GateInput.from_loaded(load_file(path, max_record_bytes=1 << 20), "drop")
    assert list(gate_input.keys) == ["drop.jsonl:1", "drop.jsonl:2", "drop.jsonl:3"]
    outcome = run_gate(gate_input, with_gate(min_validity=0, min_overall=0, min_completeness=0), level="deep")
    assert "exact duplicate of drop.jsonl:1" in outcome.deep["duplicates"][2][0].message


def test_check_view_keeps_what_the_checks_show():
    from tdm_dagster.gate.outcome import check_view

    records = binary_batch() + [{"messages": "broken"}] * 5  # validity 0.889: the batch falls short
    view = check_view(gate(records, level="quick"))
    assert view["level"] == "quick" and set(view["suites"]) == {"format"} and view["deep"] is None
    assert view["shortfalls"] == ["validity 0.889 < 0.95"]
    assert set(view["suites"]["format"]) == {"passed", "pass_rate", "failed_records", "observed", "thresholds", "samples"}
    deep = check_view(run_gate(GateInput.from_records(records[:40] + records[:1], "chat_sft_v1", "b"), CONFIG, level="deep"))
    assert deep["deep"]["duplicates"] == {
        "records_flagged": 1, "found": {"dedup.exact_duplicate": 1}, "samples": ["record 41: exact duplicate of b:1"]
    }
    assert deep["deep"]["leakage"] == {"records_flagged": 0, "found": {}, "samples": []}
