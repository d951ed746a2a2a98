"""Reworded copies of real public questions, made by deterministic transformations, and
unrelated pairs: the labelled set the semantic duplicate threshold is measured on.

A reworded copy keeps a question's meaning and answer while changing its words, as a
person rewording a GSM8K problem does (issue 23):

- synonyms (:data:`SYNONYMS`, whole words, case kept);
- its facts in another order: the sentences before the final question reversed;
- a lead-in sentence in front (one of :data:`LEAD_INS`, by the record's number).

Its word-3-gram Jaccard with the original is about 0.3-0.5: no lexical pass at 0.8 finds it.
"""

from __future__ import annotations

import json
import re

from tests.support.fixture_data import PublicData

SYNONYMS = {
    "bought": "purchased", "buys": "purchases", "buy": "purchase", "sold": "traded", "sells": "trades",
    "has": "owns", "had": "owned", "gives": "hands", "gave": "handed", "each": "every", "total": "overall",
    "store": "shop", "money": "cash", "car": "vehicle", "house": "home", "children": "kids", "big": "large",
    "small": "little", "started": "began", "starts": "begins", "finished": "completed", "needs": "requires",
    "wants": "would like", "makes": "produces", "made": "produced", "friends": "pals", "friend": "pal",
    "costs": "is priced at", "cost": "price", "works": "labors", "worked": "labored", "days": "days' time",
    "hours": "hrs", "minutes": "mins", "dollars": "bucks", "also": "additionally", "then": "afterwards",
    "many": "numerous", "much": "a lot", "week": "seven-day period", "year": "twelve months",
    "school": "academy", "students": "pupils", "people": "persons", "help": "assist", "get": "obtain",
}  # fmt: skip
LEAD_INS = (
    "Here is a word problem for you.",
    "Please work through the following question.",
    "Try to solve this one.",
    "A quick question from my homework.",
)
_WORD = re.compile(r"[A-Za-z']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _synonym(match: re.Match[str]) -> str:
    word = match.group(0)
    replacement = SYNONYMS.get(word.lower())
    if replacement is None:
        return word
    return replacement[0].upper() + replacement[1:] if word[0].isupper() else replacement


def reword(question: str, number: int) -> str:
    """``question`` in other words: synonyms, facts reversed, a lead-in sentence."""
    sentences = _SENTENCE.split(question.strip())
    facts, asked = sentences[:-1], sentences[-1:]
    reordered = " ".join([*reversed(facts), *asked])
    return f"{LEAD_INS[number % len(LEAD_INS)]} {_WORD.sub(_synonym, reordered)}"


def word_trigram_jaccard(a: str, b: str) -> float:
    def grams(text: str) -> set[tuple[str, ...]]:
        words = text.lower().split()
        return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


def public_questions(data: PublicData, per_set: int | None = None) -> list[dict[str, str]]:
    """``{instruction, output}`` of the first ``per_set`` records of each public set
    (GSM8K, GPTeacher roleplay, the seed tasks' first instances), exact repeats dropped."""
    records = []
    for path in (data.gsm8k, data.roleplay):
        records += [{"instruction": "\n".join(filter(None, (r["instruction"], r["input"]))), "output": r["output"]}
                    for r in json.loads(path.read_text(encoding="utf-8"))[:per_set]]  # fmt: skip
    with open(data.seed_tasks, encoding="utf-8") as handle:
        tasks = [json.loads(line) for line in handle if line.strip()][:per_set]
    records += [{"instruction": "\n".join(filter(None, (t["instruction"], t["instances"][0]["input"]))), "output": t["instances"][0]["output"]} for t in tasks]
    seen: set[str] = set()
    return [r for r in records if not (r["instruction"] in seen or seen.add(r["instruction"]))]  # type: ignore[func-returns-value]


def reworded_records(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each record with its question reworded and its answer kept."""
    return [{"instruction": reword(r["instruction"], i), "output": r["output"]} for i, r in enumerate(records)]


def as_chat(record: dict[str, str]) -> list[dict[str, str]]:
    return [{"role": "user", "content": record["instruction"]}, {"role": "assistant", "content": record["output"]}]
