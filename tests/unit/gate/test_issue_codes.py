"""Every issue code the code base can emit has a severity and a suggestion."""

import json
import re
from pathlib import Path

import tdm_dagster
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.validate_file import validate_file
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.records.issue_codes import ISSUE_CODES, issue_code
from tdm_dagster.records.issues import SEVERITIES, RecordIssue

PACKAGE = Path(tdm_dagster.__file__).parent
FAMILIES = "schema|format|length|diversity|balance|content|dedup|leakage|batch|answer|read|shape|text|structure|check"
EMITTERS = [
    (re.compile(rf'"((?:{FAMILIES})\.[a-z0-9_]+)"'), ""),  # a full code as a literal
    (re.compile(r'read_issue\(\s*"([a-z0-9_]+)"'), "read."),
    (re.compile(r'FileProblem\([^,()]+,\s*"([a-z0-9_]+)"'), "read."),
    (re.compile(r'(?:JsonValueProblem|_Invalid)\(\s*"([a-z0-9_]+)"'), "read."),
]
PREFIXED = {"schemas.py": "schema.", "shapes.py": "shape."}
"""Modules whose ``_issue("code", ...)`` prefixes the code."""
NOT_CODES = {"batch.json", "schema.json", "format.record", "content.record", "balance.batch_turn_ratio", "diversity.unique_responses"}
"""Literals that look like codes but are file names or suite rule/observation names."""
DYNAMIC = {"leakage.ngram", "leakage.answer_in_prompt", "leakage.own_answer_in_prompt", "content.gopher_top_2gram"}
"""Codes built with f-strings (``leakage.{kind}``, ``content.gopher_top_{n}gram``)."""


def emitted_codes() -> set[str]:
    codes = set(DYNAMIC)
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for pattern, prefix in EMITTERS:
            codes |= {prefix + code for code in pattern.findall(text)}
        if path.name in PREFIXED:
            codes |= {PREFIXED[path.name] + code for code in re.findall(r'\b_issue\(\s*"([a-z0-9_]+)"', text)}
    return codes - NOT_CODES


def test_every_registered_code_has_a_severity_and_a_suggestion():
    for code, entry in ISSUE_CODES.items():
        assert entry.severity in SEVERITIES, code
        assert entry.suggestion.strip(), code
    assert {entry.severity for entry in ISSUE_CODES.values()} == set(SEVERITIES)  # INFO included


def test_every_code_the_code_base_emits_is_registered():
    codes = emitted_codes()
    assert len(codes) > 60  # the scan found the emitters
    assert {code for code in codes if issue_code(code) is None} == set()


def test_an_issue_without_a_suggestion_gets_the_registered_one():
    assert RecordIssue("format", "format.bad_role", "m", "f").suggestion == ISSUE_CODES["format.bad_role"].suggestion
    assert RecordIssue("content", "content.gopher_top_3gram", "m", "f").suggestion == ISSUE_CODES["content.gopher_top_"].suggestion
    assert RecordIssue("read", "read.invalid_json", "m", "", suggestion="add the comma at byte 12").suggestion == "add the comma at byte 12"


def test_a_report_s_issues_all_carry_registered_suggestions_and_severities(tmp_path):
    """A file with problems of many kinds, validated at deep: every issue says what to do."""
    good = get_generator("syllo").generate(2, 60, 9)
    bad = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": "Write filler."}, {"role": "assistant", "content": "Lorem ipsum dolor sit amet, consectetur."}]},
        {"messages": [{"role": "user", "content": "What is 2+2? The answer is four hundred and two."},
                      {"role": "assistant", "content": "four hundred and two"}]},
        {**good[1], "extra": 1},
        good[2],
        {**good[3], "messages": [good[3]["messages"][0], {"role": "assistant", "content": "1. wrong"}]},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*good, *bad]) + "{not json\n")
    result = validate_file(path, TdmConfig(), level="deep")
    codes = {issue["code"] for issue in result["issues"]}
    assert {"format.bad_role", "content.lorem_ipsum", "shape.unexpected_key", "dedup.exact_duplicate", "answer.wrong", "read.invalid_json"} <= codes, codes
    for issue in result["issues"]:
        entry = issue_code(issue["code"])
        assert entry is not None and issue["suggestion"].strip(), issue
        assert issue["severity"] == entry.severity, issue
