"""Record checks: the built-in structural checks (code blocks, brackets, markdown) on
built records and on the real fixtures, and users' own checks registered by config
(``gate.quality_checks``) and by an entry point of an installed distribution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from tdm_dagster.gate.scoring import WARNING_PENALTY
from tdm_dagster.config.settings import ConfigError, TdmConfig, load_config
from tdm_dagster.gate.record_checks import QualityCheckError, record_check_issues
from tdm_dagster.gate.record_checks.structure import brackets, code_blocks, markdown
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.validate_file import validate_file
from tests.support.fixture_data import FIXTURES, GSM8K

REPO_ROOT = Path(__file__).resolve().parents[3]


def reply(text: str) -> dict:
    return {"messages": [{"role": "user", "content": "Answer, please."}, {"role": "assistant", "content": text}], "metadata": {}}


def found(check, text: str) -> list[tuple[str, str, str]]:
    return [(issue.code, issue.severity, issue.message) for issue in check(reply(text))]


def test_an_unclosed_code_block_is_an_error_naming_turn_offset_and_fence() -> None:
    assert found(code_blocks, "Here it is:\n```python\nprint(1)\n") == [
        ("structure.unclosed_code_block", "ERROR", "messages[1].content at offset 12: the code block opened by '```python' is never closed")]  # fmt: skip
    assert found(code_blocks, "Here:\n```python\nprint(1)\n```\nand\n~~~\nx = 1\n~~~\n") == []
    assert found(code_blocks, "````\n```\nnested\n```\n````") == []  # a longer fence holds shorter ones
    assert found(code_blocks, "Use ``` to open a block.") == []  # not at a line start: not a fence


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The total is (2 * 111) - 50 = 172.", None),
        ("It costs $.75(.5) + .25(.1) = .4 each.", None),
        ("1) first\n2) second\na) third", None),
        ("I am so happy :) and (truly) glad ;-) =]", None),
        ("It's (fine :)", None),
        ("(smile :-) )", None),
        ("Print ')' with `print(\")\")` or write it in a block:\n```\nf(\n```", None),
        ("The bracket \"(\" opens a group.", None),
        ("Use f(x) = (2 + 3 and stop.", "messages[1].content at offset 11: '(' is never closed"),
        ("The list [one, two) is wrong.", "messages[1].content at offset 18: ')' closes the '[' opened at offset 9"),
        ("The list [1, 2, 3) is wrong.", "messages[1].content at offset 9: '[' is never closed"),  # '3)' may be a list marker
        ("Then it ends) here.", "messages[1].content at offset 12: ')' closes nothing"),
    ],
)
def test_brackets_pair_up_outside_code_smileys_and_list_markers(text: str, expected: str | None) -> None:
    issues = found(brackets, text)
    assert issues == ([] if expected is None else [("structure.unbalanced_brackets", "WARNING", expected)])


def test_markdown_emphasis_and_tables() -> None:
    assert found(markdown, "This is **bold** and 2**3 = 8, and * a * b.") == []
    assert found(markdown, "*waves* Hello there, *smiles*") == []  # roleplay actions are not judged
    assert found(markdown, "This is **bold and it never ends.") == [
        ("structure.unclosed_emphasis", "WARNING", "messages[1].content at offset 8: the emphasis '**b' opened here is never closed")]  # fmt: skip
    table = "| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |\n\nDone."
    assert found(markdown, table) == []
    assert found(markdown, "| a | b |\n|---|---|---|\n| 1 | 2 |") == [
        ("structure.broken_table", "WARNING", "messages[1].content at offset 10: the table's delimiter row has 3 cells, its header 2")]  # fmt: skip
    assert found(markdown, "| a | b |\n|---|---|\n| 1 | 2 | 3 |") == [
        ("structure.broken_table", "WARNING", "messages[1].content at offset 20: a table row has 3 cells, its header 2")]  # fmt: skip
    assert found(markdown, "Code: `a ** b` and\n```\n| x |\n|---|---|\n```") == []  # code is not markdown


def test_structural_checks_in_the_gate_and_on_the_real_fixtures() -> None:
    records = [reply("Here:\n```python\nprint(1)\n"), reply("The answer is (4 + 5 = 9."), reply("A **fine** answer: (4 + 5) = 9.")]
    gsm = json.loads(GSM8K.read_text(encoding="utf-8"))[:60]
    batch = records + [reply(r["output"]) for r in gsm]
    outcome = run_gate(GateInput.from_records(batch, "chat_sft_v1", "b"), TdmConfig(), level="standard")
    codes = {p: [i.code for i in outcome.issues.get(p, []) if i.code.startswith("structure.")] for p in range(3)}
    assert codes == {0: ["structure.unclosed_code_block"], 1: ["structure.unbalanced_brackets"], 2: []}
    assert 0 in outcome.rejected and 1 not in outcome.rejected and outcome.scores[1] == pytest.approx(outcome.scores[2] - WARNING_PENALTY)
    quick = run_gate(GateInput.from_records(batch, "chat_sft_v1", "b"), TdmConfig(), level="quick")
    assert not any(i.code.startswith("structure.") for found in quick.issues.values() for i in found)  # quick: structure only
    for path in FIXTURES.files:  # measured: 1 of 1,500 GSM8K replies (a real typo), none of the others
        result = validate_file(path, TdmConfig(), level="standard")
        flagged = {(issue["line"], issue.get("instance")) for issue in result["issues"] if issue["code"].startswith("structure.")}
        assert len(flagged) <= 0.005 * result["totals"]["records"], (path.name, len(flagged))
        assert result["totals"]["accepted"] >= 0.99 * result["totals"]["records"], path.name


CHECKS_MODULE = '''
from tdm_dagster.records.issues import RecordIssue

def no_urls(record):
    """Replies must not send the reader to a URL."""
    for index, message in enumerate(record["messages"]):
        if message["role"] == "assistant" and "http://" in message["content"]:
            where = f"messages[{index}].content"
            yield RecordIssue("acme", "acme.url_in_reply", f"{where}: links to {message['content'].split('http://')[1][:20]}", where)

def fragile(record):
    if "boom" in record["messages"][-1]["content"]:
        raise ValueError("cannot judge a boom")
    if "odd" in record["messages"][-1]["content"]:
        return ["not an issue"]
    return []

def tiers(record):
    record["messages"][-1]["content"] = "changed"  # a check that changes what it gets changes nothing
    record["metadata"]["touched"] = True
    return []
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "acme_checks.py").write_text(CHECKS_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "acme_checks"


def test_a_check_registered_by_config_runs_and_a_failing_check_is_reported_not_fatal(acme: str) -> None:
    gsm = json.loads(GSM8K.read_text(encoding="utf-8"))[:60]
    records = [reply("See http://example.com/answer for it."), reply("It went boom, sadly."), reply("An odd one."),
               *(reply(r["output"]) for r in gsm)]  # fmt: skip
    records[3]["metadata"] = {"source": "x", "nested": {"a": 1}}
    stored = json.dumps(records)
    config = replace(TdmConfig(), gate=replace(TdmConfig().gate, quality_checks=(f"{acme}:no_urls", f"{acme}:fragile", f"{acme}:tiers")))
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1", "b"), config, level="standard")
    assert [(i.code, i.message) for i in outcome.issues[0] if i.code.startswith("acme.")] == [
        ("acme.url_in_reply", "messages[1].content: links to example.com/answer f")]
    failed = {p: [i.message for i in found if i.code == "check.failed"] for p, found in outcome.issues.items()}
    assert failed[1] == ["quality check 'acme_checks:fragile' raised ValueError: cannot judge a boom"]
    assert failed[2] == ["quality check 'acme_checks:fragile' returned a str, not a RecordIssue"]
    assert {p for p, messages in failed.items() if messages} == {1, 2}  # the others were judged
    assert set(outcome.rejected) == {0, 1, 2} and outcome.batch_approved
    assert json.dumps(records) == stored  # checks get copies


def test_checks_that_cannot_be_loaded_stop_the_gate_with_their_name(acme: str, home) -> None:
    for reference, expected in (("acme_missing:no_urls", "cannot load 'acme_missing:no_urls': ModuleNotFoundError"),
                                (f"{acme}:nothing", "cannot load 'acme_checks:nothing': AttributeError"),
                                (f"{acme}:CHECKS_MODULE_IS_NOT_HERE", "AttributeError")):  # fmt: skip
        with pytest.raises(QualityCheckError, match=expected):
            record_check_issues([reply("x")], [0], [reply("x")["messages"]], (reference,))
    home.config_path.write_text("gate:\n  quality_checks: [acme_checks.no_urls]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match='gate.quality_checks is .*expected a list of "module:function" references'):
        load_config(home, environ={})
    home.config_path.write_text("gate:\n  quality_checks: ['acme_checks:no_urls']\n", encoding="utf-8")
    assert load_config(home, environ={}).gate.quality_checks == ("acme_checks:no_urls",)


def test_a_check_registered_by_an_entry_point_of_an_installed_distribution(tmp_path: Path) -> None:
    """A real distribution on ``sys.path`` (a module and its ``.dist-info`` with
    ``entry_points.txt``), in a fresh interpreter, as ``pip install`` leaves one."""
    site = tmp_path / "site"
    info = site / "acme_checks-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "acme_checks.py").write_text(CHECKS_MODULE, encoding="utf-8")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[tdm_dagster.quality_checks]\nno_urls = acme_checks:no_urls\n", encoding="utf-8")
    data = tmp_path / "replies.jsonl"
    gsm = json.loads(GSM8K.read_text(encoding="utf-8"))[:40]
    rows = [{"prompt": "Where is it?", "completion": "It is at http://example.com/x now."}]
    rows += [{"prompt": r["instruction"], "completion": r["output"]} for r in gsm]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    program = textwrap.dedent(f"""
        import json
        from tdm_dagster.config.settings import TdmConfig
        from tdm_dagster.gate.validate_file import validate_file
        result = validate_file({str(data)!r}, TdmConfig(), level="standard")
        print(json.dumps([[issue["line"], issue["code"], issue["severity"]] for issue in result["issues"]
                          if not issue["code"].startswith("content.near")]))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[1, "acme.url_in_reply", "ERROR"]]


def test_tdm_validate_names_a_check_that_does_not_load_in_one_line(home, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tdm_dagster.cli import main

    home.config_path.write_text("gate:\n  quality_checks: ['acme_gone:no_urls']\n", encoding="utf-8")
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"prompt": "Say hi.", "completion": "Hi there, how are you today?"}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(data), "--level", "standard"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: gate.quality_checks: cannot load 'acme_gone:no_urls': ModuleNotFoundError: No module named 'acme_gone'")
