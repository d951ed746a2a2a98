"""Word-level measures of a reply that the broken-reply rules (:mod:`tdm_dagster.gate.broken_replies`)
compare with their thresholds: its tokens, its word-salad pairs, the share of it inside
repeats, and how much of it is the prompt's own text. Plain functions of text; the rules
decide what they mean."""

from __future__ import annotations

import re
from itertools import compress, repeat
from operator import ne, sub

DETERMINERS = frozenset("the an my your our their its".split())
"""Words that take a noun phrase next ("a" is left out: "a is 5" is algebra)."""
NOT_AFTER_DETERMINER = frozenset(
    "the a an and or but of to in on at by for with from as is are was were been am it i he she we "
    "they me him us them my your our their his not does did would could should than if which whom".split()
)
"""Function words no noun phrase starts with (nouns like "will", "can", "may" are left out)."""
NEVER_DOUBLED = frozenset("the a an of and or to in on at for with from".split())
"""Function words English does not write twice in a row ("had had", "that that" it does)."""
SALAD_PAIR = re.compile(
    rf"(?<!\S)(?:(?i:{'|'.join(DETERMINERS)})(?=\s+(?:{'|'.join(NOT_AFTER_DETERMINER)})(?!\S))"
    rf"|(?i:({'|'.join(NEVER_DOUBLED)}))(?=\s+(?i:\1)(?!\S)))"
)
"""A determiner followed straight by a function word (as written, lower case), or a
function word doubled; matched at the first word, so "the the the" counts twice."""
EDGE_PUNCTUATION = "\"'`“”‘’«»()[]{}<>.,;:!?…*_~-–—/\\|"


def reply_tokens(text: str) -> list[str]:
    """Lower-case tokens, edge punctuation stripped: what the loop and echo rules compare
    (``map`` and ``filter`` keep the loop in C: a third of a generator's cost)."""
    return list(filter(None, map(str.strip, text.lower().split(), repeat(EDGE_PUNCTUATION))))


def salad_pairs(text: str) -> int:
    """How many times :data:`SALAD_PAIR` matches ``text``. An ASCII text is read as its
    whitespace-separated tokens, pair by pair (what the regex matches there, at a fifth of
    its cost); other text goes to the regex, whose case folding goes beyond ``str.lower``
    (the long s matches "s")."""
    if not text.isascii():
        return len(SALAD_PAIR.findall(text))
    written = text.split()
    lowered = text.lower().split()
    return sum(
        1
        for first, second, second_lowered in zip(lowered, written[1:], lowered[1:])
        if (first in DETERMINERS and second in NOT_AFTER_DETERMINER) or (first == second_lowered and first in NEVER_DOUBLED)
    )


def repeated_share(words: list[str], n: int) -> float:
    """Share of ``words`` covered by a repeat of an earlier n-gram: a text said twice
    scores 0.5, three times 0.67 (datatrove's duplicate n-gram fraction, over words).

    A repeat is an n-gram at a place other than its first; the n words from each repeat
    on are covered, and their union counted (``map`` and ``compress`` keep the loops in C)."""
    grams = list(zip(*(words[i:] for i in range(n))))
    first = dict(zip(reversed(grams), range(len(grams) - 1, -1, -1)))  # each n-gram's first place
    repeats = list(compress(range(len(grams)), map(ne, map(first.__getitem__, grams), range(len(grams)))))
    covered = sum(map(min, repeat(n), map(sub, repeats[1:], repeats))) + n if repeats else 0
    return covered / len(words)


def echo_share(reply: list[str], prompt: str, n: int) -> float:
    """How much reply and prompt are one text: the smaller of the share of the reply's
    token n-grams found in the prompt and the share of the prompt's found in the reply
    (a reply that rewrites the prompt's input copies much of it, but not the instruction)."""
    given = list(zip(*(reply[i:] for i in range(n))))
    asked_tokens = reply_tokens(prompt)
    asked = list(zip(*(asked_tokens[i:] for i in range(n))))
    if not given or not asked:
        return 0.0
    copied = sum(map(set(asked).__contains__, given)) / len(given)
    if not copied:  # the smaller share is 0: the prompt's side need not be counted
        return 0.0
    return min(copied, sum(map(set(given).__contains__, asked)) / len(asked))
