"""Thresholds of the five quality suites, validated once so the suites can trust them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tdm_dagster.config.bounds import Bounded

DEFAULT_TOP_NGRAM_CHAR_FRACS: Mapping[int, float] = MappingProxyType({2: 0.20, 3: 0.18, 4: 0.16})
"""Gopher (Rae et al. 2021, table A1) top n-gram character fractions."""

_BETWEEN_0_AND_1 = Bounded("between 0 and 1", 1, whole=False, range_named=True)
MAX_WORDS = 1_000_000
"""Word and line thresholds: no reply is longer (a record is at most ``gate.max_record_bytes``)."""
MAX_REPLY_CHARS = 1_073_741_824
"""Characters of one reply: ``gate.max_record_bytes``' own maximum."""
MAX_WORD_LENGTH = 1000
"""Characters of a mean word: more is one token, which ``max_token_chars`` judges."""
MAX_FLUENCY = 10
"""The reply model's fluency (:mod:`tdm_dagster.gate.text_model`): no reply scores more."""
BOUNDS: Mapping[str, Bounded] = MappingProxyType({
    "min_tokens": Bounded("a whole number >= 1", 16_777_216, minimum=1),
    "max_tokens": Bounded("a whole number >= 1", 16_777_216, minimum=1),
    "ngram_min_words": Bounded("a whole number >= 1", MAX_WORDS, minimum=1),
    "dup_line_min_lines": Bounded("a whole number >= 1", MAX_WORDS, minimum=1),
    "reply_min_words": Bounded("a whole number >= 1", MAX_WORDS, minimum=1),
    "max_token_chars": Bounded("a whole number >= 1", MAX_REPLY_CHARS, minimum=1),
    "max_vowelless_words": Bounded("a whole number >= 0", MAX_WORDS),
    "stop_word_run_words": Bounded("a whole number >= 1", MAX_WORDS, minimum=1),
    "max_ungrammatical_pairs": Bounded("a whole number >= 0", MAX_WORDS),
    "min_reply_fluency": Bounded("a number >= 0", MAX_FLUENCY, whole=False),
    **dict.fromkeys(("min_mean_word_length", "max_mean_word_length"), Bounded("a number >= 0", MAX_WORD_LENGTH, whole=False)),
    **dict.fromkeys(
        ("min_unique_response_ratio", "balance_tolerance", "min_pass_rate", "dup_line_frac", "max_mixed_alnum_ratio", "near_threshold",
         "max_symbol_ratio", "max_loop_share", "max_prompt_echo", "max_foreign_script_ratio",
         "min_stop_word_ratio"),
        _BETWEEN_0_AND_1,
    ),
})
"""The check of each numeric key; the maxima are in docs/reference/config.md (Maxima)."""
MAX_NGRAM = 64
"""The largest n of ``top_ngram_char_fracs`` (Gopher's are 2 to 4)."""


def _check(key: str, value: Any, bounds: Bounded) -> None:
    problem = bounds(value)
    if problem:
        raise ValueError(f"quality.{key}: {value!r} is not {problem}")


@dataclass(frozen=True)
class QualitySettings:
    """Every knob of the quality suites; defaults suit chat fine-tuning data.

    Construct directly or with :meth:`from_mapping` (the ``quality:`` section of
    config.yaml); both validate, so a bad value fails at load time, not mid-batch.
    """

    tokenizer_path: str | None = None
    """Hugging Face tokenizer folder of the model being trained; None: the bundled default."""
    min_tokens: int = 4
    max_tokens: int = 4096
    min_unique_response_ratio: float = 0.70
    balance_tolerance: float = 0.10
    """Assistant/user turn ratio must lie within 1 ± this, per record and for the batch."""
    min_pass_rate: float = 0.95
    """Per suite: share of records that must pass its per-record expectations."""
    dup_line_frac: float = 0.30
    top_ngram_char_fracs: Mapping[int, float] = field(
        default_factory=lambda: DEFAULT_TOP_NGRAM_CHAR_FRACS
    )
    ngram_min_words: int = 100
    """Turns with fewer words skip the top n-gram rules: in a short turn one n-gram is
    a large share of the text by construction, which says nothing about repetition."""
    dup_line_min_lines: int = 4
    """Turns with fewer non-empty lines skip the duplicate-line rule, for the same reason."""
    reply_min_words: int = 6
    """Replies with fewer words skip the is-it-language rules: short answers are legitimate."""
    max_mixed_alnum_ratio: float = 0.34
    """Share of a plain run of words that may mix letters and digits ("sail2") before the
    reply is gibberish: a third, since code reads "while l1 or l2 or carry" (2 of 6)."""
    stop_word_run_words: int = 20
    min_stop_word_ratio: float = 0.04
    """An English run of ``stop_word_run_words`` plain words or more needs this share of stop words."""
    max_token_chars: int = 100
    """Longest run of characters without a space (format characters count as spaces) in
    a reply: longer is a dump or glued junk (broken replies, :mod:`tdm_dagster.gate.broken_replies`)."""
    min_mean_word_length: float = 1.5
    max_mean_word_length: float = 20.0
    """Mean word length range of a reply (and of its tail) of ``reply_min_words`` words or more (Gopher: 3-10)."""
    max_symbol_ratio: float = 0.5
    """Share of a reply's visible characters that may be neither letters, digits nor common punctuation."""
    max_vowelless_words: int = 4
    """Distinct lower-case words of 3+ letters without a vowel a reply may hold ("lbs", "hrs")."""
    max_ungrammatical_pairs: int = 2
    """Determiner + function word pairs ("the of") or doubled function words a reply may hold."""
    max_loop_share: float = 0.49
    """Share of a reply's words that may sit in repeats of an earlier 8-word sequence."""
    max_prompt_echo: float = 0.85
    """Share of a reply's word 3-grams that may be copied from its prompt."""
    max_foreign_script_ratio: float = 0.5
    """Share of a reply's letters that may be in a script its prompt neither uses nor names."""
    min_reply_fluency: float = 0.7
    """The reply model's least fluency (:mod:`tdm_dagster.gate.text_model`): word salad,
    shuffled words and loops of function words score 0-0.7, real replies 0.89 and up."""
    near_threshold: float = 0.8
    """A reply that passes a content rule with a measured value above this fraction of
    the rule's threshold passed narrowly: a WARNING (``content.near_repetition``,
    ``content.near_mixed_alnum``) that lowers its score. 1 turns the warnings off."""
    languages: tuple[str, ...] = ()
    """ISO 639-1 codes replies must be written in (e.g. ["en"]); empty: any language."""

    def __post_init__(self) -> None:
        if self.tokenizer_path is not None and not (
            isinstance(self.tokenizer_path, str) and self.tokenizer_path.strip()
        ):
            raise ValueError(
                f"quality.tokenizer_path: {self.tokenizer_path!r} is not a non-empty path or null"
            )
        for key, bounds in BOUNDS.items():
            _check(key, getattr(self, key), bounds)
        if self.max_tokens < self.min_tokens:
            raise ValueError(
                f"quality.max_tokens: {self.max_tokens} is below min_tokens {self.min_tokens}"
            )
        object.__setattr__(self, "top_ngram_char_fracs", _ngram_fracs(self.top_ngram_char_fracs))
        object.__setattr__(self, "languages", _language_codes(self.languages))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> QualitySettings:
        """Settings from a config mapping; unknown keys and bad values raise ValueError."""
        if not isinstance(values, Mapping):
            raise ValueError(f"quality: {values!r} is not a mapping of settings")
        allowed = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in allowed:
                raise ValueError(
                    f"quality.{key}: unknown setting; allowed: {', '.join(allowed)}"
                )
        return cls(**values)


def _ngram_fracs(value: Any) -> Mapping[int, float]:
    """Read-only {n: fraction}; keys may arrive as strings from YAML/JSON."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError(
            f"quality.top_ngram_char_fracs: {value!r} is not a non-empty mapping of n to fraction"
        )
    fracs: dict[int, float] = {}
    for raw_n, frac in value.items():
        try:
            n = int(raw_n)
        except (TypeError, ValueError):
            n = 0
        if not 2 <= n <= MAX_NGRAM or isinstance(raw_n, bool):
            raise ValueError(f"quality.top_ngram_char_fracs: key {raw_n!r} is not an n-gram size from 2 to {MAX_NGRAM}")
        _check(f"top_ngram_char_fracs.{n}", frac, _BETWEEN_0_AND_1)
        fracs[n] = float(frac)
    return MappingProxyType(dict(sorted(fracs.items())))


def _language_codes(value: Any) -> tuple[str, ...]:
    """Lower-case ISO 639-1 codes lingua knows; a list from YAML becomes a tuple."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"quality.languages: {value!r} is not a list of ISO 639-1 codes such as [en, de]")
    if not value:
        return ()
    from lingua import IsoCode639_1  # a compiled extension: imports in milliseconds

    known = {name.lower() for name in dir(IsoCode639_1) if len(name) == 2 and name.isupper()}
    codes = tuple(str(code).lower() for code in value)
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise ValueError(f"quality.languages: {', '.join(map(repr, unknown))} not ISO 639-1 codes lingua knows")
    return codes
