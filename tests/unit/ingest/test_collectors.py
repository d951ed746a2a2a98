"""Collectors on real material: this repository's git history and docs pages, the public
GPTeacher data (tests/data) as a conversation log, and files in a real inbox."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tdm_dagster.ingest.collectors import (
    COMMIT_INSTRUCTION,
    CollectorError,
    conversation_logs,
    doc_sections,
    feedback_tier,
    git_commits,
    manual_files,
)
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.ingest.inbox_claims import claim
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.schemas import schema_gate
from tests.support.fixture_data import ROLEPLAY

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def _assert_gate_passes(records: list[dict]) -> None:
    assert records
    schema = schema_gate(records, "chat_sft_v1")
    assert schema.rejected == {}, list(schema.rejected.items())[:3]
    outcome = run_gate(GateInput.from_records(records, "chat_sft_v1"), TdmConfig(), level="quick")
    assert outcome.rejected == {}, list(outcome.rejected.items())[:3]
    assert len(outcome.approved_indices) == len(records)
    assert outcome.batch_approved


# ---------------------------------------------------------------------------- git


def test_git_commits_of_this_repository_match_git_and_pass_the_gate():
    records = git_commits(REPO, max_commits=10_000)
    non_merges = int(_git(REPO, "rev-list", "--no-merges", "--count", "HEAD").strip())
    assert 0 < len(records) <= non_merges
    shas = [r["metadata"]["commit"] for r in records]
    assert len(set(shas)) == len(shas)
    newest = _git(REPO, "log", "--no-merges", "-1", "--format=%H").strip()
    assert shas[0] == newest
    first = records[0]
    assert first["messages"][1]["content"] == _git(REPO, "log", "-1", "--format=%B", newest).strip()
    prompt = first["messages"][0]["content"]
    assert prompt.startswith(COMMIT_INSTRUCTION)
    for line in _git(REPO, "show", "--numstat", "--format=", newest).strip().splitlines()[:40]:
        added, removed, path = line.split("\t", 2)
        assert f"+{added} -{removed} {path}" in prompt
    assert all(r["metadata"]["source"] == "git" and r["metadata"]["tier"] == "curated" for r in records)
    _assert_gate_passes(records)


def test_git_commits_max_commits():
    assert len(git_commits(REPO, max_commits=3)) == 3
    assert git_commits(REPO, max_commits=0) == []


def test_git_commits_skips_merges_and_empty_commits(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "Add a.txt with the first line")
    _git(repo, "checkout", "-q", "-b", "feature")
    (repo / "b.txt").write_text("b\nb\n")
    _git(repo, "add", "b.txt")
    _git(repo, "commit", "-q", "-m", "Add b.txt on the feature branch")
    _git(repo, "checkout", "-q", "main")
    (repo / "a.txt").write_text("one\ntwo\n")
    _git(repo, "commit", "-q", "-am", "Append a second line to a.txt")
    _git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch feature", "feature")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "An empty commit")
    (repo / "c.txt").write_text("c\n")
    _git(repo, "add", "c.txt")
    _git(repo, "commit", "-q", "--allow-empty-message", "-m", "")
    records = git_commits(repo)
    messages = sorted(r["messages"][1]["content"] for r in records)
    assert messages == ["Add a.txt with the first line", "Add b.txt on the feature branch", "Append a second line to a.txt"]
    appended = next(r for r in records if r["messages"][1]["content"].startswith("Append"))
    assert "+1 -0 a.txt" in appended["messages"][0]["content"]
    assert "1 file(s) changed, 1 insertion(s)(+), 0 deletion(s)(-)" in appended["messages"][0]["content"]
    _assert_gate_passes(records)


def test_git_commits_on_a_non_repository_is_a_clear_error(tmp_path):
    with pytest.raises(CollectorError, match="not a git repository"):
        git_commits(tmp_path)
    with pytest.raises(CollectorError, match="no such directory"):
        git_commits(tmp_path / "missing")


# ---------------------------------------------------------------------------- docs


def test_doc_sections_of_the_docs_pages():
    records = doc_sections(DOCS)
    prompts = [r["messages"][0]["content"] for r in records]
    assert "Explain Quick start (embedded default) (from guides/first-batch.md)" in prompts
    assert "Explain Where things live: TDM_HOME (from concepts/loop.md)" in prompts
    config = next(r for r in records if r["metadata"]["heading"] == "Config")
    # a code fence stays in its section: its "# comment" lines are no headings
    assert "auto_generate:" in config["messages"][1]["content"]
    assert "tokenizer_path" in config["messages"][1]["content"]
    headings = {r["metadata"]["heading"] for r in records}
    page_lines = [line for page in DOCS.rglob("*.md") for line in page.read_text().splitlines()]
    for heading in headings:
        assert any(line.lstrip("#").strip() == heading for line in page_lines if line.startswith("#"))
    assert all(len(r["messages"][1]["content"]) >= 80 for r in records)
    assert all(r["metadata"]["source"] == "docs" and r["metadata"]["tier"] == "curated" for r in records)
    _assert_gate_passes(records)


def test_doc_sections_folder_glob_and_short_sections(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "guide.md").write_text(
        "# Guide\n\nToo short.\n\n## Installing\n\n" + "Run the installer, then check the version it prints. " * 3 + "\n"
    )
    (tmp_path / "notes.md.bak").write_text("# Not a document\n\n" + "words " * 40)
    records = doc_sections(tmp_path)
    assert [r["messages"][0]["content"] for r in records] == ["Explain Installing (from sub/guide.md)"]
    assert doc_sections([tmp_path], glob="*.md") == []
    with pytest.raises(CollectorError):
        doc_sections(tmp_path / "missing")


def test_doc_sections_collects_plain_text_files(tmp_path):
    lead = "Keep the tokenizer next to the checkpoint, so serving loads the same vocabulary it was trained with. "
    (tmp_path / "deploy_notes.txt").write_text(lead * 2 + "\n\n# Rolling back\n\n" + "Run the rollback command, then check that the server answers health checks. " * 2)
    (tmp_path / "plain.txt").write_text("A plain text document with no headings at all, only sentences that explain one idea at length. " * 2)
    (tmp_path / "short.txt").write_text("Too short.")
    records = doc_sections(tmp_path)
    assert sorted(r["messages"][0]["content"] for r in records) == [
        "Explain Rolling back (from deploy_notes.txt)",
        "Explain deploy notes (from deploy_notes.txt)",
        "Explain plain (from plain.txt)",
    ]
    notes = next(r for r in records if r["metadata"]["heading"] == "deploy notes")
    assert notes["messages"][1]["content"] == (lead * 2).strip() and "Rolling back" not in notes["messages"][1]["content"]
    assert doc_sections(tmp_path / "plain.txt")[0]["messages"][0]["content"] == "Explain plain (from plain.txt)"
    _assert_gate_passes(records)


# ---------------------------------------------------------------------------- conversation logs


def _write_log(path: Path) -> list[dict]:
    rows = json.loads(ROLEPLAY.read_text())[:8]
    feedback = ["up", "down", 5, 2, "4", None, True, 0.9]
    lines = []
    for row, value in zip(rows, feedback):
        prompt = row["instruction"] + (("\n\n" + row["input"]) if row["input"] else "")
        entry = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}],
                 "conversation_id": f"c{len(lines)}"}
        if value is not None:
            entry["feedback"] = value
        lines.append(json.dumps(entry))
    lines.insert(2, "{not json")
    lines.insert(5, json.dumps({"messages": [{"role": "user"}], "feedback": "up"}))
    lines.insert(6, json.dumps([1, 2]))
    lines.insert(7, "")
    path.write_text("\n".join(lines) + "\n")
    return rows


def test_conversation_logs_from_gpteacher(tmp_path):
    log = tmp_path / "chats.jsonl"
    rows = _write_log(log)
    result = conversation_logs(log)
    # kept: up (gold), 5 (gold), "4" (raw: 0.8 of 5 -> gold), True (gold), 0.9 (gold)
    kept_outputs = [r["messages"][1]["content"] for r in result.records]
    assert kept_outputs == [rows[i]["output"] for i in (0, 2, 4, 6, 7)]
    assert [r["metadata"]["tier"] for r in result.records] == ["gold", "gold", "gold", "gold", "gold"]
    assert result.skipped == 3  # down, 2, no feedback
    assert [p["line"] for p in result.problems] == [3, 6, 7]
    assert "not JSON" in result.problems[0]["reason"]
    assert result.records[0]["metadata"]["log_fields"] == {"conversation_id": "c0"}
    assert result.as_dict()["records"] == 5
    _assert_gate_passes(result.records)


def test_feedback_tiers():
    assert feedback_tier("up") == "gold"
    assert feedback_tier("Down") is None
    assert feedback_tier(5) == "gold"
    assert feedback_tier(3) == "raw"
    assert feedback_tier(2) is None
    assert feedback_tier(0.65) == "raw"
    assert feedback_tier(None) is None
    assert feedback_tier("meh") is None
    with pytest.raises(CollectorError):
        conversation_logs(Path("/nonexistent/chats.jsonl"))


# ---------------------------------------------------------------------------- manual


def test_manual_files_lists_inbox_and_archive(home):
    dropped = home.inbox_dir / "notes.jsonl"
    dropped.parent.mkdir(parents=True, exist_ok=True)
    dropped.write_text('{"prompt": "p", "completion": "c"}\n')
    (home.inbox_dir / "half.part").write_text("x")
    rows = manual_files(home)
    assert [(Path(r["path"]).name, r["state"]) for r in rows] == [("notes.jsonl", "pending")]
    made = claim(home, dropped, "normal")
    assert made is not None
    rows = manual_files(home)
    assert [(Path(r["path"]).name, r["state"], r["batch_id"]) for r in rows] == [("notes.jsonl", "archived", made.batch_id)]
    assert rows[0]["bytes"] == len('{"prompt": "p", "completion": "c"}\n')
