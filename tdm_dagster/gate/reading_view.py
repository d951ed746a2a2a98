"""Records as a reader sees them: the one normalised view the gate judges text on.

Invisible characters change a text's bytes without changing what a reader sees, so they
hide a copy from every comparison on bytes: an evaluation item with U+200B between every
character, or a soft hyphen inside each word, is the same item to a reader (and to a
model trained on it) but a different string to a hash. So the gate judges every text on
its *reading view* (:func:`reading_view`):

- Unicode format characters (category Cf) removed: zero-width spaces and joiners, soft
  hyphens (U+00AD), word joiners, byte-order marks, tag characters, bidi controls;
- then NFKC, which folds compatibility forms (full-width letters, ligatures) into the
  characters they stand for.

The view is used for leakage (eval prompts, answers, problems and n-grams, through
:func:`tdm_dagster.gate.minhash.normalize_text`), exact and near duplicates (in-process,
against the queued index and on the sharded path alike, through the same function), the
quality suites, the text rules and answer verification (:func:`conversation_views`, in
:func:`tdm_dagster.gate.run.gate_findings`). The stored record keeps its bytes: the view
is never written anywhere.

What the view removes is also reported (:func:`hidden_character_issues`):

- ``text.bidi_control`` (ERROR): a bidi embedding, override or isolate (U+202A-U+202E,
  U+2066-U+2069) in any turn. These reorder what is displayed against what is stored:
  the Trojan Source attack (CVE-2021-42574). Right-to-left text needs none of them (the
  Unicode bidi algorithm orders it; the implicit marks LRM, RLM and ALM are not flagged),
  and a model trained on them learns to emit text that reads differently from what it
  says, so such a record is rejected.
- ``text.invisible_characters`` (WARNING): format characters inside a word (a word
  character on either side), with their count and the first one's offset. Between words
  or at a text's edge they are formatting (a byte-order mark, an emoji's zero-width
  joiner); inside a word they split it for a machine and not for a reader. Zero-width
  (non-)joiners between letters of scripts that spell with them (Persian, the Indic
  scripts) are orthography and are not flagged.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from tdm_dagster.records.issues import RecordIssue

BIDI_CONTROL = "text.bidi_control"
INVISIBLE_CHARACTERS = "text.invisible_characters"

BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
"""Embeddings, overrides, isolates and their terminators: what Trojan Source uses."""
_JOINERS = frozenset("\u200c\u200d")
"""Zero-width non-joiner and joiner: spelling in Persian and the Indic scripts."""


@cache
def _format_characters() -> str:
    """Every code point of category Cf (163 in Unicode 15), as one string."""
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")


@cache
def _removal_table() -> dict[int, None]:
    return dict.fromkeys(map(ord, _format_characters()))


@cache
def _hidden_run() -> re.Pattern[str]:
    """A run of format characters."""
    return re.compile(f"[{re.escape(_format_characters())}]+")


def reading_view(text: str) -> str:
    """``text`` as a reader sees it: format characters (Unicode Cf) removed, then NFKC.

    ASCII text is returned as it is (it has neither, and NFKC leaves it alone). The view
    of a view is itself."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text.translate(_removal_table()))


def conversation_views(conversations: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Each conversation with every string content replaced by its :func:`reading_view`
    (new dicts: the records themselves are never changed)."""
    return [
        [
            {**message, "content": reading_view(message["content"])}
            if isinstance(message.get("content"), str) and not message["content"].isascii()
            else message
            for message in messages
        ]
        for messages in conversations
    ]


_LATIN_LIKE = frozenset(("LATIN", "GREEK", "CYRILLIC"))
"""Scripts whose words never need a zero-width (non-)joiner."""


def _spells_with_joiners(char: str) -> bool:
    return char.isalpha() and not char.isascii() and unicodedata.name(char, "").split(" ")[0] not in _LATIN_LIKE


def _hidden_in_words(text: str) -> tuple[int, int]:
    """How many format characters (bidi controls aside) sit inside words, and the offset
    of the first (-1 for none)."""
    count, first = 0, -1
    for run in _hidden_run().finditer(text):
        start, end = run.span()
        before, after = text[start - 1 : start], text[end : end + 1]
        if not (before and after and _is_word(before) and _is_word(after)):
            continue
        hidden = [i for i in range(start, end) if text[i] not in BIDI_CONTROLS]
        if all(text[i] in _JOINERS for i in hidden) and _spells_with_joiners(before) and _spells_with_joiners(after):
            continue
        count += len(hidden)
        first = hidden[0] if first < 0 and hidden else first
    return count, first


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


def hidden_character_issues(
    valid_indices: Sequence[int], conversations: Sequence[Sequence[Mapping[str, Any]]]
) -> dict[int, list[RecordIssue]]:
    """``text.bidi_control`` and ``text.invisible_characters`` by batch position, for the
    first turn of each record that has them (one issue per code per record), from the
    stored text (``conversations`` as the schema gate read them, not their view)."""
    found: dict[int, list[RecordIssue]] = {}
    for position, messages in zip(valid_indices, conversations):
        codes: set[str] = set()
        for index, message in enumerate(messages):
            text = message.get("content")
            if not isinstance(text, str) or text.isascii():
                continue
            where = f"messages[{index}].content"
            if BIDI_CONTROL not in codes and (bidi := [i for i, char in enumerate(text) if char in BIDI_CONTROLS]):
                codes.add(BIDI_CONTROL)
                message_text = (f"{where}: {len(bidi)} bidi control character(s), the first U+{ord(text[bidi[0]]):04X} "
                                f"({unicodedata.name(text[bidi[0]])}) at offset {bidi[0]}: what is displayed is not what is stored")  # fmt: skip
                found.setdefault(position, []).append(RecordIssue("text", BIDI_CONTROL, message_text, where))
            if INVISIBLE_CHARACTERS not in codes:
                count, first = _hidden_in_words(text)
                if count:
                    codes.add(INVISIBLE_CHARACTERS)
                    message_text = (f"{where}: {count} invisible character(s) inside words, the first U+{ord(text[first]):04X} "
                                    f"({unicodedata.name(text[first], 'format character')}) at offset {first}")  # fmt: skip
                    found.setdefault(position, []).append(RecordIssue("text", INVISIBLE_CHARACTERS, message_text, where, severity="WARNING"))
    return found
