"""Collectors: turn material that already exists into chat records (``chat_sft_v1``).

Every collector returns records shaped
``{"messages": [user, assistant], "metadata": {"source": <name>, "tier": <tier>, ...}}``
so they go through the schema gate and the quality suites like any other batch.

Sources:
- ``git``: a repository's history (``git log``, no network): the change summary (files
  with added/removed line counts) -> the commit message. Merge commits and empty
  messages are skipped. Tier ``curated``.
- ``docs``: markdown and plain-text files split at their headings: "Explain <heading>
  (from <file>)" -> the section body (a ``.txt`` file's text before its first ``#``
  heading, or all of it when it has none, is a section named after the file). Tier ``curated``.
- ``conversations``: chat JSONL with user feedback; positively rated conversations are
  kept (tier ``gold`` for an explicit up or a high rating, else ``raw``); malformed lines
  are reported, never raised.
- ``manual``: files people drop in the inbox (see :mod:`tdm_dagster.ingest.inbox`).

How each source fares once its batches are gated is ``tdm_dagster.stats.source_health``.
This module imports no Dagster.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdm_dagster.config.sections import CollectorsConfig
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.inbox import is_ignored_name
from tdm_dagster.records.strict_json import JsonValueProblem, loads_strict

GIT_SOURCE = "git"
DOCS_SOURCE = "docs"
CONVERSATIONS_SOURCE = "conversations"
MANUAL_SOURCE = "manual"
COLLECTOR_SOURCES = (GIT_SOURCE, DOCS_SOURCE, CONVERSATIONS_SOURCE, MANUAL_SOURCE)
COMMIT_INSTRUCTION = "Write the commit message for this change summary"


class CollectorError(ValueError):
    """A collector cannot read its source at all (not a repository, no such folder...)."""


def nothing_to_collect(settings: CollectorsConfig) -> str | None:
    """Why mining the sources would collect nothing (none configured), or None."""
    if settings.git_repos or settings.docs or settings.conversation_logs:
        return None
    return "no source to mine: collectors.git_repos, collectors.docs and collectors.conversation_logs are empty"


def _record(prompt: str, answer: str, source: str, tier: str, **provenance: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        "metadata": {"source": source, "tier": tier, **provenance},
    }


# ---------------------------------------------------------------------------- git

_RECORD_SEP = "\x1e"
_FIELD_SEP = "\x1f"
_GIT_FORMAT = f"{_RECORD_SEP}%H{_FIELD_SEP}%P{_FIELD_SEP}%an{_FIELD_SEP}%aI{_FIELD_SEP}%B{_FIELD_SEP}"


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=120
        )
    except FileNotFoundError as error:
        raise CollectorError("git is not installed (needed by the git collector)") from error
    if done.returncode != 0:
        raise CollectorError(f"git {' '.join(args[:2])} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def git_commits(
    repo_path: str | Path, max_commits: int = 500, *, max_files: int = 40
) -> list[dict[str, Any]]:
    """One record per non-merge commit with a message, newest first.

    The user turn is :data:`COMMIT_INSTRUCTION` plus the change summary (one line per
    file, ``+added -removed path``; ``binary`` for binary files; at most ``max_files``
    lines, then a count of the rest) and the totals; the assistant turn is the full
    commit message. Raises :class:`CollectorError` if ``repo_path`` is not a git
    repository.
    """
    repo = Path(repo_path).expanduser()
    if not repo.is_dir():
        raise CollectorError(f"{repo}: no such directory (expected a git repository)")
    probe = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0 or probe.stdout.strip() != "true":
        raise CollectorError(f"{repo}: not a git repository ({probe.stderr.strip() or probe.stdout.strip()})")
    if max_commits <= 0:
        return []
    out = _git(repo, "log", "--no-merges", "--numstat", f"--max-count={max_commits}", f"--format={_GIT_FORMAT}")
    records = []
    for chunk in out.split(_RECORD_SEP)[1:]:
        parts = chunk.split(_FIELD_SEP)
        if len(parts) < 6:
            continue
        sha, parents, author, date, message, numstat = parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]
        message = message.strip()
        if not message or len(parents.split()) > 1:
            continue
        files = []
        added_total = removed_total = 0
        for line in numstat.strip().splitlines():
            cols = line.split("\t", 2)
            if len(cols) != 3:
                continue
            added, removed, path = cols
            if added == "-" or removed == "-":
                files.append(f"binary {path}")
                continue
            added_total += int(added)
            removed_total += int(removed)
            files.append(f"+{added} -{removed} {path}")
        if not files:  # an empty commit: no change to summarise
            continue
        shown = files[:max_files]
        if len(files) > max_files:
            shown.append(f"... and {len(files) - max_files} more files")
        summary = "\n".join(shown)
        prompt = (
            f"{COMMIT_INSTRUCTION}:\n\n{summary}\n\n"
            f"{len(files)} file(s) changed, {added_total} insertion(s)(+), {removed_total} deletion(s)(-)"
        )
        records.append(
            _record(prompt, message, GIT_SOURCE, "curated", repo=str(repo.resolve()), commit=sha, author=author, date=date)
        )
    return records


# ---------------------------------------------------------------------------- docs

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_sections(text: str) -> list[tuple[str, int, str]]:
    """(heading, level, body) for each heading; headings inside code fences don't count."""
    sections: list[tuple[str, int, list[str]]] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append((match.group(2).strip(), len(match.group(1)), []))
        elif sections:
            sections[-1][2].append(line)
    return [(heading, level, "\n".join(body).strip()) for heading, level, body in sections]


def _text_sections(text: str, title: str) -> list[tuple[str, int, str]]:
    """A plain-text file's sections: its lead (the text before the first heading, or all
    of it), titled ``title``, then its markdown-style sections, if any."""
    lead = []
    for line in text.splitlines():
        if _HEADING.match(line):
            break
        lead.append(line)
    return [(title, 1, "\n".join(lead).strip()), *_markdown_sections(text)]


DOC_GLOBS = ("**/*.md", "**/*.txt")
"""The documents a docs folder is searched for: markdown and plain text."""


def doc_sections(
    paths: str | Path | Sequence[str | Path],
    glob: str | Sequence[str] = DOC_GLOBS,
    *,
    min_chars: int = 80,
    min_words: int = 12,
) -> list[dict[str, Any]]:
    """One record per section of a markdown or ``.txt`` file with enough text
    (``min_chars`` and ``min_words``).

    ``paths`` is a folder (searched with ``glob``, one pattern or several), a file, or a
    list of either. The file named in the prompt is relative to the folder it was found in.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    patterns = [glob] if isinstance(glob, str) else list(glob)
    files: list[tuple[Path, str]] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = {f for pattern in patterns for f in path.glob(pattern) if f.is_file()}
            files.extend((f, f.relative_to(path).as_posix()) for f in sorted(found))
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise CollectorError(f"{path}: no such file or folder")
    records = []
    for path, name in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        plain = path.suffix.lower() == ".txt"
        sections = _text_sections(text, path.stem.replace("_", " ").replace("-", " ")) if plain else _markdown_sections(text)
        for position, (heading, level, body) in enumerate(sections):
            if len(body) < min_chars or len(body.split()) < min_words:
                continue
            clean = re.sub(r"[`*]", "", heading).strip()
            records.append(
                _record(
                    f"Explain {clean} (from {name})",
                    body,
                    DOCS_SOURCE,
                    "curated",
                    file=str(path.resolve()),
                    heading=heading,
                    heading_level=level,
                    section=position,
                )
            )
    return records


# ---------------------------------------------------------------------------- conversation logs


@dataclass
class ConversationLog:
    """What :func:`conversation_logs` kept, skipped (not positive) and could not read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    """``{"line": n, "reason": ...}`` for each malformed line."""

    def as_dict(self) -> dict[str, Any]:
        return {"records": len(self.records), "skipped": self.skipped, "problems": self.problems}


_UP = {"up", "thumbs_up", "thumbsup", "+1", "good", "positive", "like", "yes", "true"}
_DOWN = {"down", "thumbs_down", "thumbsdown", "-1", "bad", "negative", "dislike", "no", "false"}


def feedback_tier(feedback: Any, *, scale: int = 5, gold_at: float = 0.8, keep_at: float = 0.6) -> str | None:
    """``"gold"``, ``"raw"`` or None (not kept) for one conversation's feedback.

    An explicit up (``"up"``, ``True``, ``"+1"``...) is gold, an explicit down is dropped.
    A numeric rating (number or numeric string) on 1..``scale`` (or a fraction in 0..1 when
    it is a float <= 1) is gold at ``gold_at`` of the scale or more, raw at ``keep_at`` or
    more, dropped below. No or unknown feedback: dropped (only positive ratings are kept).
    """
    if isinstance(feedback, bool):
        return "gold" if feedback else None
    if isinstance(feedback, str):
        word = feedback.strip().lower()
        if word in _UP:
            return "gold"
        if word in _DOWN or not word:
            return None
        try:
            feedback = float(word)
        except ValueError:
            return None
    if isinstance(feedback, (int, float)):
        value = float(feedback)
        fraction = value if isinstance(feedback, float) and 0.0 <= value <= 1.0 else value / scale
        if fraction >= gold_at:
            return "gold"
        if fraction >= keep_at:
            return "raw"
    return None


def _check_messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or len(messages) < 2:
        return "messages: expected a list of at least two messages"
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
            return f"messages[{position}]: expected an object with string role and content"
    return None


def conversation_logs(path: str | Path, *, scale: int = 5) -> ConversationLog:
    """Positively rated conversations from a chat JSONL log with feedback.

    Each line: ``{"messages": [...], "feedback": "up" | "down" | <rating>, ...}``. System
    messages and the conversation up to its last assistant turn are kept as they are
    (``role`` and ``content`` only); other fields of the line go to metadata under
    ``log_fields``. Malformed lines go to ``problems``; nothing raises except a missing file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CollectorError(f"{path}: no such file")
    result = ConversationLog()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = loads_strict(line)
            except JsonValueProblem as problem:  # NaN, a lone surrogate, nesting too deep, ...
                result.problems.append({"line": number, "reason": str(problem)})
                continue
            except json.JSONDecodeError as error:
                result.problems.append({"line": number, "reason": f"not JSON: {error.msg}"})
                continue
            if not isinstance(row, dict):
                result.problems.append({"line": number, "reason": "not a JSON object"})
                continue
            problem = _check_messages(row.get("messages"))
            if problem:
                result.problems.append({"line": number, "reason": problem})
                continue
            messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
            last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
            if last_assistant < 1:
                result.problems.append({"line": number, "reason": "no assistant reply after a user turn"})
                continue
            tier = feedback_tier(row.get("feedback"), scale=scale)
            if tier is None:
                result.skipped += 1
                continue
            extra = {k: v for k, v in row.items() if k not in ("messages", "feedback")}
            metadata = {"source": CONVERSATIONS_SOURCE, "tier": tier, "file": str(path.resolve()), "line": number,
                        "feedback": row.get("feedback")}
            if extra:
                metadata["log_fields"] = extra
            result.records.append({"messages": messages[: last_assistant + 1], "metadata": metadata})
    return result


# ---------------------------------------------------------------------------- manual (inbox)


def manual_files(home: TdmHome | str | Path) -> list[dict[str, Any]]:
    """The ``manual`` source: files waiting in ``inbox/`` and files claimed into
    ``archive/<batch>/``, each ``{"path", "state": "pending"|"archived", "batch_id",
    "bytes", "modified"}`` (ISO UTC), oldest first."""
    home = TdmHome.of(home)
    rows = []
    inbox = home.inbox_dir
    if inbox.is_dir():
        for entry in inbox.iterdir():
            if entry.is_file() and not is_ignored_name(entry.name):
                rows.append((entry, "pending", None))
    archive = home.archive_dir
    if archive.is_dir():
        for batch in archive.iterdir():
            if batch.is_dir():
                rows.extend((entry, "archived", batch.name) for entry in batch.iterdir() if entry.is_file())
    out = []
    for entry, state, batch_id in rows:
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue
        out.append({
            "path": str(entry), "state": state, "batch_id": batch_id, "bytes": stat.st_size,
            "modified": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds"),
        })
    return sorted(out, key=lambda row: (row["modified"], row["path"]))


def collected_sources(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many records each source contributed (a quick check before ingesting)."""
    return dict(Counter(str((r.get("metadata") or {}).get("source")) for r in records))
