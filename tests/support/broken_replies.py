"""Replies broken the way generators break them, built on real GSM8K questions.

Each kind takes a real question and its real (right) answer from ``tests/data/`` and a
seeded random generator, and returns the reply a failing generator would have written:
the kinds of issue 20's table (the right answer and then junk, salad, a run without
spaces, another script, the question echoed, short loops) and more, the way generators
really fail (cut off by ``max_tokens`` after a preamble, a paragraph looping, chat
template tokens leaking, markdown rubble, encoded dumps, drifting into another script,
the next turn's template written out). Deterministic: same seed, same corpus.
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixture_data import GSM8K

COMMON_WORDS = (
    "the of and to a in is you that it he was for on are as with his they I at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up other "
    "about out many then them these so some her would make like him into time has look two more write go see "
    "number no way could people my than first water been call who oil its now find long down day did get come "
    "made may part over new sound take only little work know place year live me back give most very after thing "
    "our just name good sentence man think say great where help through much before line right too mean old any "
    "same tell boy follow came want show also around form three small set put end does another well large must "
    "big even such because turn here why ask went men read need land different home us move try kind hand picture"
).split()
"""The 200 most frequent English words (Fry's list), stop words included, most frequent first."""
CONSONANTS = "bcdfghjklmnpqrstvwxz"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыэюя"
MARKDOWN_RUBBLE = ("**", "---", "```", "| | |", "|---|---|", "###", "* * *", "> >", "__", "~~", "```python", "***")
TEMPLATE_TOKENS = ("<|im_end|>", "</s>", "<|endoftext|>", "<|eot_id|>", "[/INST]")


@dataclass(frozen=True)
class Question:
    prompt: str
    answer: str
    """The data set's own (right) reply."""

    @property
    def final_number(self) -> str:
        return re.findall(r"-?\d[\d,]*(?:\.\d+)?", self.answer)[-1]


def questions(path: Path = GSM8K) -> list[Question]:
    return [Question(r["instruction"] + ("\n" + r["input"] if r["input"] else ""), r["output"]) for r in json.loads(path.read_text())]


def _salad(rng: random.Random, count: int) -> list[str]:
    """Words drawn by frequency (Zipf: the n-th word 1/n as likely), as a model sampling at a broken temperature writes them."""
    weights = [1 / rank for rank in range(1, len(COMMON_WORDS) + 1)]
    return rng.choices(COMMON_WORDS, weights, k=count)


def _junk_word(rng: random.Random, letters: str) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))


def _truncated(rng: random.Random, q: Question) -> str:
    """A chatty preamble and the working, cut off where ``max_tokens`` ran out (mid-word or between words)."""
    preamble = (
        "Sure! Let's work through this problem carefully, one step at a time, so that we can be sure "
        "every number we use is right before we give the final answer. First, let's restate what we know. "
    )
    text = preamble + q.prompt + " Now let's look at each part of the question in turn and see what it tells us about the answer"
    return text[: rng.randint(len(preamble), len(text) - 1)].rstrip(" .,!?")


def _hexdump(text: str) -> str:
    data = text.encode()
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        groups = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        lines.append(f"{offset:08x}: {groups}")
    return "Here is the output:\n" + "\n".join(lines)


KINDS: dict[str, Callable[[random.Random, Question], str]] = {
    # issue 20's table
    "answer_then_consonant_junk": lambda rng, q: q.answer + " " + " ".join(_junk_word(rng, CONSONANTS) for _ in range(40)),
    "answer_then_80_word_salad": lambda rng, q: q.answer + " " + " ".join(_salad(rng, 80)),
    "run_of_3000_without_spaces": lambda rng, q: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3000)),
    "salad_500_words": lambda rng, q: " ".join(_salad(rng, 500)),
    "salad_zero_width_joined": lambda rng, q: "\u200b".join(_salad(rng, rng.randint(60, 300))),
    "cyrillic_words": lambda rng, q: " ".join(_junk_word(rng, CYRILLIC) for _ in range(rng.randint(20, 60))),
    "question_echoed_once": lambda rng, q: q.prompt,
    "question_echoed_twice": lambda rng, q: q.prompt + rng.choice(["\n", " ", "\n\n"]) + q.prompt,
    "loop_the_answer_is": lambda rng, q: f"The answer is {q.final_number}. " * 15,
    "loop_the": lambda rng, q: "the " * 80,
    "loop_I": lambda rng, q: "I " * 30,
    # more, the way generators fail
    "truncated_after_preamble": _truncated,
    "paragraph_looping": lambda rng, q: "\n\n".join([" ".join(q.answer.split())] * rng.randint(2, 4)),
    "chat_template_leak": lambda rng, q: q.answer + rng.choice(TEMPLATE_TOKENS) * rng.randint(1, 20),
    "next_turn_written_out": lambda rng, q: q.answer + "\n\n### Instruction:\n" + q.prompt + "\n\n### Response:\n" + q.answer,
    "answer_then_markdown_rubble": lambda rng, q: q.answer + "\n" + "\n".join(rng.choice(MARKDOWN_RUBBLE) for _ in range(rng.randint(15, 40))),
    "base64_dump": lambda rng, q: "Here is the result, encoded:\n" + "\n".join(
        re.findall(".{1,76}", base64.b64encode(rng.randbytes(rng.randint(200, 900))).decode())
    ),
    "hex_dump": lambda rng, q: _hexdump(q.answer),
    "answer_then_cjk_drift": lambda rng, q: q.answer + " " + "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(30, 120))),
    "answer_then_emoji_spam": lambda rng, q: q.answer + " " + "".join(rng.choice("😂🤣🔥💯✨🙏👍") for _ in range(rng.randint(20, 80))),
    # kinds the rules above miss; the reply model (tdm_dagster.gate.text_model) catches some
    "answer_words_shuffled": lambda rng, q: " ".join(rng.sample(q.answer.split(), len(q.answer.split()))),
    "salad_of_prompt_words": lambda rng, q: " ".join(rng.choices(q.prompt.lower().split(), k=rng.randint(40, 80))),
}

KNOWN_MISSES = {
    "truncated_after_preamble": "a reply cut off mid-word reads like one that ends there: the reply model warns on about half "
    "(content.unfinished_ending: 'each part of the', 'averag'), but rejecting them would cost real data 1 %",
    "answer_words_shuffled": "shuffled GSM8K working is mostly numbers and equations: the reply model judges few word pairs "
    "in it (measured fluency 0.3-2.4, median 1.3; real held-out GSM8K 1.40 and up, seed tasks 0.89 and up)",
    "salad_of_prompt_words": "the prompt's own words in random order: the reply model rejects 5 in 50 that the rules pass "
    "(fluency 0.38-1.63, median 1.0), the rest overlap real replies of domains it never saw",
}
"""Kinds of the corpus no rule catches yet, and why (the tests hold them to being missed, so the list stays true)."""


def broken_corpus(per_kind: int, seed: int = 0, path: Path = GSM8K) -> dict[str, list[tuple[str, str]]]:
    """``per_kind`` (prompt, broken reply) pairs of each kind, on distinct real questions."""
    pool = questions(path)
    corpus = {}
    for kind, build in KINDS.items():
        rng = random.Random(f"{seed}:{kind}")
        chosen = rng.sample(pool, per_kind)
        corpus[kind] = [(q.prompt, build(rng, q)) for q in chosen]
    return corpus
