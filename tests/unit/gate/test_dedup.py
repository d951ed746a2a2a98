"""Exact and near-duplicate detection on real public texts (tests/data), no mocks."""

from __future__ import annotations

import random

import pytest

from bench.bench_near_dup import edited_copy, real_texts
from tdm_dagster.gate.dedup import Match, NearDuplicateIndex, exact_key, normalize_text
from tests.support.fixture_data import FIXTURES

THRESHOLD = 0.8


def word_shingles(text: str, size: int = 3) -> set[tuple[str, ...]]:
    """The index's shingles, computed independently in plain Python."""
    words = normalize_text(text).split()
    if len(words) < size:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def true_jaccard(a: str, b: str) -> float:
    left, right = word_shingles(a), word_shingles(b)
    return len(left & right) / len(left | right) if left | right else 0.0


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts = sorted(set(real_texts(FIXTURES)), key=exact_key)  # distinct, in an order unrelated to the files
    return [text for text in texts if len(text.split()) >= 20][:4000]


def test_normalization_ignores_case_spacing_punctuation_and_unicode_forms() -> None:
    assert exact_key("Hello,   World!\n") == exact_key("hello world") == exact_key("ＨＥＬＬＯ world")
    assert exact_key("hello world") != exact_key("hello word")
    assert normalize_text("Ça  va?\tOUI") == "ça va oui"


def test_injected_near_duplicates_found_with_high_recall_and_precision(corpus: list[str]) -> None:
    rng = random.Random(11)
    originals = rng.sample(range(len(corpus)), 400)
    texts = corpus + [edited_copy(corpus[i], rng, rng.uniform(0.01, 0.04)) for i in originals]
    keys = [f"batch.jsonl:{line}" for line in range(1, len(texts) + 1)]
    injected = {(keys[len(corpus) + k], keys[i]) for k, i in enumerate(originals)}
    truth = {
        pair for pair in injected if true_jaccard(texts[keys.index(pair[0])], texts[keys.index(pair[1])]) >= THRESHOLD
    }
    assert len(truth) >= 300  # the edits are light: most copies stay above the threshold

    matches = NearDuplicateIndex(THRESHOLD).find_within(keys, texts)

    found = {(m.key_a, m.key_b) for m in matches}
    recall = len(truth & found) / len(truth)
    correct = [
        m
        for m in matches
        if (m.key_a, m.key_b) in injected
        or true_jaccard(texts[keys.index(m.key_a)], texts[keys.index(m.key_b)]) >= THRESHOLD
    ]
    precision = len(correct) / len(matches)
    assert recall >= 0.9, recall
    assert precision >= 0.95, precision
    for match in matches:  # the reported similarity is the exact one
        assert match.similarity == pytest.approx(
            true_jaccard(texts[keys.index(match.key_a)], texts[keys.index(match.key_b)])
        )


def test_within_batch_pairs_name_both_records_and_point_at_the_earliest(corpus: list[str]) -> None:
    original = corpus[0]
    texts = [corpus[1], original, corpus[2], original.upper(), edited_copy(original, random.Random(1), 0.01)]
    keys = ["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "a.jsonl:4", "a.jsonl:5"]

    matches = NearDuplicateIndex().find_within(keys, texts)

    assert [(m.key_a, m.key_b) for m in matches] == [("a.jsonl:4", "a.jsonl:2"), ("a.jsonl:5", "a.jsonl:2")]
    assert matches[0].similarity == 1.0
    assert THRESHOLD <= matches[1].similarity < 1.0


def test_query_against_indexed_data_and_save_load_round_trip(corpus: list[str], tmp_path) -> None:
    index = NearDuplicateIndex()
    index.add([f"queue/normal/b1.jsonl:{i}" for i in range(1000)], corpus[:1000])
    rng = random.Random(5)
    new = [edited_copy(corpus[7], rng, 0.01), corpus[2500], corpus[42]]

    matches = index.query(["new:1", "new:2", "new:3"], new)

    assert [(m.key_a, m.key_b) for m in matches] == [
        ("new:1", "queue/normal/b1.jsonl:7"),
        ("new:3", "queue/normal/b1.jsonl:42"),
    ]
    path = tmp_path / "index" / "near_dup.npz"
    index.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["near_dup.npz"]  # no temp file left behind
    loaded = NearDuplicateIndex.load(path)
    assert len(loaded) == 1000 and loaded.keys == index.keys
    assert loaded.query(["new:1", "new:2", "new:3"], new) == matches
    loaded.add(["new:2"], [corpus[2500]])
    assert loaded.query(["again"], [corpus[2500]]) == [Match("again", "new:2", 1.0)]


def test_empty_inputs() -> None:
    index = NearDuplicateIndex()
    assert index.find_within([], []) == []
    assert index.query(["x"], ["some text here"]) == []
    index.add([], [])
    assert len(index) == 0
    with pytest.raises(ValueError):
        index.add(["only one key"], ["one", "two"])


def test_short_and_wordless_texts() -> None:
    """Fewer words than the shingle size: one shingle of all the words, so only texts
    that normalize identically match; texts without words never match."""
    texts = ["Yes!", "yes", "yes no", "Yes, no.", "yes no maybe so", "", "?!", "..."]
    keys = [str(i) for i in range(len(texts))]

    matches = NearDuplicateIndex().find_within(keys, texts)

    assert [(m.key_a, m.key_b, m.similarity) for m in matches] == [("1", "0", 1.0), ("3", "2", 1.0)]


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        NearDuplicateIndex(threshold=0.0)
    with pytest.raises(ValueError):
        NearDuplicateIndex(shingle_size=0)
