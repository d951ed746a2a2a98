"""Labelled examples through `tdm datasets`: add keeps out empty text and bad spans (with
the reason, in rejected/), the spaCy export round-trips and carries the intents and
spans, derive remaps intents, and split stratifies by intent."""

import json
from collections import Counter

import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl, read_jsonl
from tests.support.labelled_examples import INTENTS, labelled_examples
from tests.unit.cli.test_cli_datasets import data, tdm


@pytest.fixture
def examples_file(tmp_path):
    records = labelled_examples()
    records[3]["text"] = ""
    records[5]["expected_entities"][0][2] += 2  # the span no longer covers "Chicago"
    path = tmp_path / "labelled.jsonl"
    atomic_write_jsonl(path, records)
    return path


def _add_examples(tmp_path, records=None, name="intents"):
    source = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.jsonl"
    atomic_write_jsonl(source, labelled_examples() if records is None else records)
    data("create", name, "--spec", "labelled_v1")
    return data("add", name, str(source))


def test_add_keeps_out_empty_text_and_bad_spans(home, examples_file):
    data("create", "intents", "--spec", "labelled_v1")
    added = data("add", "intents", str(examples_file))
    assert added["record_count"] == len(labelled_examples()) - 2 and added["rejected"] == 2
    kept = list(read_jsonl(added["rejected_file"]))
    reasons = " | ".join(row["reasons"][0]["message"] for row in kept)
    assert "labelled.jsonl line 4, record #3: text: empty" in reasons
    assert "line 6, record #5: expected_entities[0] 'Chicago' [22, 27): the span covers 'icago', not the entity's text" in reasons


def test_the_spacy_export_round_trips_with_intents_and_spans(home, tmp_path):
    import spacy
    from spacy.tokens import DocBin

    _add_examples(tmp_path)
    out = tmp_path / "intents.spacy"
    assert data("export", "intents", str(out))["records"] == len(labelled_examples())
    docs = list(DocBin().from_bytes(out.read_bytes()).get_docs(spacy.blank("en").vocab))
    for doc, record in zip(docs, labelled_examples(), strict=True):
        assert max(doc.cats, key=doc.cats.get) == record["expected_intent"] and set(doc.cats) == set(INTENTS)
        assert [[ent.text, ent.label_, ent.start_char, ent.end_char] for ent in doc.ents] == record["expected_entities"]
    data("import", "again", str(out), "--no-gate")
    assert list(data_records(tmp_path, "again")) == labelled_examples()
    gated = data("import", "gated", str(out))
    assert gated["record_count"] == len(labelled_examples()) and gated["rejected"] == 0


def data_records(tmp_path, name):
    out = tmp_path / f"{name}.jsonl"
    data("export", name, str(out))
    return read_jsonl(out)


def test_derive_remaps_intents_and_split_stratifies_by_them(home, tmp_path):
    _add_examples(tmp_path)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"book_flight": "travel", "cancel_flight": "travel"}))
    derived = data("derive", "intents", "--intent-mapping", str(mapping), "--intent-mapping", "praise=feedback")
    assert derived["operation"]["steps"][0]["changed"] == 5
    intents = Counter(record["expected_intent"] for record in data_records(tmp_path, "intents"))
    assert intents == {"travel": 3, "get_weather": 3, "feedback": 2, "book_restaurant": 2, "complaint": 2}

    splits = data("split", "intents", "--ratios", "train=0.67,test=0.33", "--stratify", "expected_intent", "--out", str(tmp_path / "s"))
    test = Counter(record["expected_intent"] for record in read_jsonl(tmp_path / "s" / "test.jsonl"))
    assert sum(splits["counts"].values()) == 12 and test == {"travel": 1, "get_weather": 1, "feedback": 1, "book_restaurant": 1, "complaint": 1}


def test_intent_mapping_from_config_and_to_undeclared_intents(home, tmp_path):
    _add_examples(tmp_path)
    refused = tdm("derive", "intents", "--intent-mapping", "config", ok=False)
    assert refused.exit_code == 2 and "config has no labels.intent_mapping" in refused.output
    (home.root / "config.yaml").write_text(
        "labels:\n  intents: [travel, get_weather, praise, book_restaurant, complaint]\n"
        "  intent_mapping: {book_flight: travel, cancel_flight: travel}\n"
    )
    assert data("derive", "intents", "--intent-mapping", "config")["operation"]["steps"][0]["changed"] == 3
    refused = tdm("derive", "intents", "--intent-mapping", "praise=kudos", ok=False)
    assert refused.exit_code == 2 and "kudos: not in labels.intents" in refused.output
    # and add now refuses a record whose intent the config does not declare
    added = _add_examples(tmp_path, labelled_examples()[:3], name="declared")
    assert added["record_count"] == 2 and added["rejected"] == 1
    assert "expected_intent: 'book_flight' is not a declared label" in read_jsonl(added["rejected_file"])[0]["reasons"][0]["message"]
