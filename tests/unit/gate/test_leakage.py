"""Train/eval leakage on real GSM8K (tests/data), a held-out slice put back, no mocks."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from bench.bench_near_dup import edited_copy
from tdm_dagster.gate.dedup import normalize_text
from tdm_dagster.gate.leakage import (
    EvalItem,
    EvalSet,
    find_answer_leaks,
    find_ngram_leaks,
    find_own_answer_leaks,
)
from tests.support.fixture_data import GSM8K, ROLEPLAY


def alpaca_text(record: dict[str, Any]) -> str:
    return f"{record['instruction']}\n{record['output']}"


def changed_words(text: str, count: int, rng: random.Random) -> str:
    """``text`` with ``count`` words replaced: numbers by other numbers, words by other words."""
    words = text.split()
    for position in rng.sample(range(len(words)), count):
        words[position] = (
            str(rng.randrange(1000)) if words[position][0].isdigit() else rng.choice(("Tom", "red", "week"))
        )
    return " ".join(words)


@pytest.fixture(scope="module")
def gsm8k() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(held-out 200 items, the other 1,300 of the shipped subset as training items), a fixed random split."""
    records = json.loads(GSM8K.read_text(encoding="utf-8"))
    random.Random(3).shuffle(records)
    return records[:200], records[200:]


def test_held_out_items_put_back_verbatim_and_edited_are_flagged_with_their_pairs(gsm8k) -> None:
    held_out, train = gsm8k
    eval_set = EvalSet.from_alpaca(held_out, "gsm8k_test")
    rng = random.Random(8)
    texts = [alpaca_text(r) for r in train]
    planted = {}
    for index, record in enumerate(held_out[:100]):
        copy = alpaca_text(record) if index < 50 else changed_words(alpaca_text(record), 4, rng)
        planted[f"train.jsonl:{len(texts) + 1}"] = f"gsm8k_test:{index}"
        texts.append(copy)
    keys = [f"train.jsonl:{line}" for line in range(1, len(texts) + 1)]

    leaks = find_ngram_leaks(eval_set, keys, texts)

    flagged = {(leak.train_key, leak.eval_key) for leak in leaks}
    verbatim, edited = list(planted.items())[:50], list(planted.items())[50:]
    assert set(verbatim) <= flagged
    assert len(set(edited) & flagged) >= 47  # measured on 500 items: 98.6% with 4 words changed
    unrelated = {train_key for train_key, _ in flagged if train_key not in planted}
    assert len(unrelated) <= 3, unrelated  # GSM8K holds a few near-duplicate problems of its own
    for leak in leaks:
        item = eval_set.items[int(leak.eval_key.split(":")[1])]
        record_text = normalize_text(texts[keys.index(leak.train_key)])
        assert leak.evidence in record_text and leak.evidence in normalize_text(f"{item.prompt} {item.answer}")
        assert len(leak.evidence.split()) == 12 and leak.overlap >= 1 and 0 < leak.fraction <= 1
    first = next(leak for leak in leaks if (leak.train_key, leak.eval_key) == verbatim[0])
    assert first.fraction == 1.0


def test_edited_questions_alone_are_caught_and_other_data_is_not_flagged(gsm8k) -> None:
    held_out, _ = gsm8k
    eval_set = EvalSet.from_alpaca(held_out, "gsm8k_test")
    rng = random.Random(9)
    questions = [changed_words(r["instruction"], 2, rng) for r in held_out]
    roleplay = json.loads(ROLEPLAY.read_text(encoding="utf-8"))

    caught = find_ngram_leaks(eval_set, [f"q:{i}" for i in range(200)], questions)
    unrelated = find_ngram_leaks(eval_set, [f"r:{i}" for i in range(len(roleplay))], [alpaca_text(r) for r in roleplay])

    correct = {leak.train_key for leak in caught if leak.eval_key == f"gsm8k_test:{leak.train_key[2:]}"}
    assert len(correct) / 200 >= 0.85
    assert unrelated == []


def test_n_is_configurable_within_8_to_13(gsm8k) -> None:
    held_out, _ = gsm8k
    eval_set = EvalSet.from_alpaca(held_out[:5], "e")
    copy = edited_copy(held_out[0]["instruction"], random.Random(2), 0.05)
    assert find_ngram_leaks(eval_set, ["t"], [copy], n=8)[0].eval_key == "e:0"
    for n in (7, 14):
        with pytest.raises(ValueError):
            find_ngram_leaks(eval_set, ["t"], [copy], n=n)


def test_answer_leaks_in_training_prompts_and_in_an_items_own_prompt(gsm8k) -> None:
    held_out, train = gsm8k
    items = [EvalItem(f"gsm8k_test:{i}", r["instruction"], r["output"]) for i, r in enumerate(held_out)]
    items.append(
        EvalItem(
            "gives_away", "What is 6 x 7? Hint: 6 x 7 = 42, so the answer is 42.", "6 x 7 = 42, so the answer is 42"
        )
    )
    items.append(EvalItem("short", "Is 72 the answer to 48 + 24?", "72"))
    eval_set = EvalSet(items)
    answer = held_out[4]["output"]
    prompts = [r["instruction"] for r in train[:1000]]
    prompts += [f"Check this worked solution and say if it is right:\n{answer.upper()}", "What is 48 + 24? It is 72."]
    keys = [f"train.jsonl:{line}" for line in range(1, len(prompts) + 1)]

    leaks = find_answer_leaks(eval_set, keys, prompts)

    assert {(leak.train_key, leak.eval_key, leak.kind) for leak in leaks} == {
        ("gives_away", "gives_away", "own_answer_in_prompt"),
        ("train.jsonl:1001", "gsm8k_test:4", "answer_in_prompt"),
    }
    leak = next(leak for leak in leaks if leak.kind == "answer_in_prompt")
    assert leak.evidence == normalize_text(answer) and leak.overlap == len(leak.evidence.split())


def test_own_answer_leaks_of_training_records() -> None:
    leaks = find_own_answer_leaks(
        ["t:1", "t:2"],
        ["Translate 'the cat sat on the mat today' to French.", "Repeat after me: the cat sat on the mat."],
        ["Le chat était assis sur le tapis aujourd'hui.", "The cat sat on the mat."],
    )
    assert [(leak.train_key, leak.kind) for leak in leaks] == [("t:2", "own_answer_in_prompt")]


def test_eval_sets_from_chats_and_empty_inputs() -> None:
    chats = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name the capital of France."},
                {"role": "assistant", "content": "Paris."},
            ]
        },
    ]
    eval_set = EvalSet.from_chats(chats, "chat_eval")
    assert eval_set.items == [EvalItem("chat_eval:0", "Be brief.\nName the capital of France.", "Paris.")]
    assert find_ngram_leaks(eval_set, [], []) == []
    assert find_answer_leaks(eval_set, [], []) == []
    assert find_ngram_leaks(EvalSet([]), ["t"], ["anything at all"]) == []
    with pytest.raises(ValueError):
        EvalSet.from_chats([{"messages": [{"role": "user", "content": "hi"}]}], "bad")
    with pytest.raises(ValueError):
        EvalSet([EvalItem("same", "a", "b"), EvalItem("same", "c", "d")])


def test_a_template_plus_one_word_is_no_evidence_but_a_copy_is() -> None:
    """Generated prompts are templates: sharing the template and the one word after it
    (the first syllable tile of a SYLLO puzzle) is chance, not a leak."""
    template = "solve this puzzle rebuild the words from the syllable tiles below every tile is used exactly once tiles"
    tails = ["et bow laugh pi an o vi sion", "er cap ta in ro bot ic arm", "ber ry straw fish gold mon key"]
    eval_set = EvalSet(EvalItem(f"e:{i}", f"{template} {tail}", "1. word") for i, tail in enumerate(tails))
    chance = f"{template} et cetera dragon fly sun flower pen cil"
    copy = f"{template} {tails[0]}"

    leaks = find_ngram_leaks(eval_set, ["chance", "copy"], [chance, copy])

    assert [(leak.train_key, leak.eval_key) for leak in leaks] == [("copy", "e:0")]
