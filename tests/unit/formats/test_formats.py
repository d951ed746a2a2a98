"""Dataset import/export formats: real files, real pyarrow/datasets/spaCy/tokenizer, no mocks."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tdm_dagster.formats import (
    FormatError,
    export_records,
    import_records,
    infer_format,
)
from tdm_dagster.gate.quality.tokens import DEFAULT_TOKENIZER_PATH
from tdm_dagster.gate.schemas import get_spec
from tests.support.fixture_data import ROLEPLAY

ROUND_TRIP_FILES = {
    "jsonl": "records.jsonl",
    "json": "records.json",
    "csv": "records.csv",
    "parquet": "records.parquet",
    "hf": "records_hf",
    "spacy": "records.spacy",
    "pickle": "records.pkl",
}
TRICKY_TEXT = 'naïve "quoted", commas, ünïcödé 日本語 🙂\nsecond line\r\nthird\ttab \u2028 sep'

MIXED_RECORDS: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": TRICKY_TEXT},
            {"role": "assistant", "content": 'Done, "really".'},
        ],
        "metadata": {"source": "unit", "level": 3, "score": 0.25, "tags": ["a", "b"], "nested": {"ok": True, "none": None}},
        "id": 7,
    },
    {
        "messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "0"}],
        "metadata": {"level": "three"},
        "id": "c-2",
    },
    {"instruction": "Translate", "input": TRICKY_TEXT, "output": "'single' and \"double\""},
    {"instruction": "Say hi", "input": "", "output": "hi", "metadata": {"label": "greeting"}},
    {"prompt": "1+1=", "completion": "2", "id": 3},
]


def imported(path: Path, fmt: str | None = None, *, allow_pickle: bool = False) -> list[dict[str, Any]]:
    """The records ``import_records`` read, after checking it rejected none."""
    result = import_records(path, fmt, allow_pickle=allow_pickle)
    assert result.rejected == []
    return result.records


@pytest.fixture(scope="module")
def roleplay() -> list[dict[str, Any]]:
    return json.loads(ROLEPLAY.read_text(encoding="utf-8"))[:500]


@pytest.mark.parametrize("fmt", ROUND_TRIP_FILES)
def test_mixed_records_round_trip_identically(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / ROUND_TRIP_FILES[fmt]
    assert export_records(MIXED_RECORDS, path, fmt) == len(MIXED_RECORDS)
    assert imported(path, allow_pickle=True) == MIXED_RECORDS  # format inferred from the path
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind


@pytest.mark.parametrize("fmt", ROUND_TRIP_FILES)
def test_real_alpaca_data_round_trips_identically(tmp_path: Path, roleplay: list[dict[str, Any]], fmt: str) -> None:
    path = tmp_path / ROUND_TRIP_FILES[fmt]
    assert export_records(roleplay, path, fmt) == 500
    assert imported(path, fmt, allow_pickle=True) == roleplay


def test_hf_export_is_loaded_by_the_datasets_library(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "chats"
    export_records(MIXED_RECORDS[:2], path, "hf")
    loaded = datasets.load_from_disk(str(path))
    assert loaded.num_rows == 2
    assert loaded[0]["messages"] == MIXED_RECORDS[0]["messages"]  # chats stay native for trainers
    assert json.loads(loaded[0]["metadata"]) == MIXED_RECORDS[0]["metadata"]


def test_hf_export_replaces_an_existing_dataset_folder(tmp_path: Path) -> None:
    path = tmp_path / "data_hf"
    export_records(MIXED_RECORDS, path, "hf")
    export_records(MIXED_RECORDS[2:4], path, "hf")
    assert imported(path) == MIXED_RECORDS[2:4]
    assert [p.name for p in tmp_path.iterdir()] == ["data_hf"]


def test_parquet_stores_chats_natively(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "chats.parquet"
    export_records(MIXED_RECORDS[:2], path)
    table = pq.read_table(path)
    messages_type = table.schema.field("messages").type
    assert pa.types.is_list(messages_type)
    assert messages_type.value_type == pa.struct([("role", pa.string()), ("content", pa.string())])
    assert table.column("messages").to_pylist()[1] == MIXED_RECORDS[1]["messages"]


def test_csv_keeps_plain_strings_plain_and_nested_fields_as_json(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    export_records([*MIXED_RECORDS[:2], MIXED_RECORDS[2]], path)
    with open(path, encoding="utf-8", newline="") as handle:
        header, first, *_ = list(csv.reader(handle))
    assert header[:3] == ["messages:json", "metadata:json", "id:json"]
    assert json.loads(first[0]) == MIXED_RECORDS[0]["messages"]

    alpaca = tmp_path / "alpaca.csv"
    export_records([MIXED_RECORDS[2]], alpaca)
    with open(alpaca, encoding="utf-8", newline="") as handle:
        # the output starts with ' itself, so it gets the formula escape's leading ' (import removes it)
        assert list(csv.reader(handle)) == [["instruction", "input", "output"], ["Translate", TRICKY_TEXT, "''single' and \"double\""]]


CLASSIFIED_AND_ENTITIES = [
    {"text": "Ada Lovelace wrote programs in London.", "entities": [[0, 12, "PERSON"], [31, 37, "GPE"]]},
    {"text": "Great movie, would watch again!", "label": "positive"},
    {"text": "Dull.", "label": "negative"},
    {"text": "Paris is nice", "label": "positive", "entities": [[0, 5, "GPE"]]},
]


def test_spacy_docbin_holds_cats_and_entities_readable_by_spacy(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    path = tmp_path / "train.spacy"
    export_records(CLASSIFIED_AND_ENTITIES, path)
    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Ada Lovelace", "PERSON"), ("London", "GPE")]
    assert docs[0].cats == {}
    assert docs[1].cats == {"positive": 1.0, "negative": 0.0}
    assert docs[3].cats == {"positive": 1.0, "negative": 0.0}
    assert imported(path) == CLASSIFIED_AND_ENTITIES


def test_spacy_docbin_made_by_spacy_itself_imports_as_text_label_entities(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    doc_bin = DocBin()
    for record in CLASSIFIED_AND_ENTITIES:
        doc = nlp.make_doc(record["text"])
        if "label" in record:
            doc.cats = {"positive": float(record["label"] == "positive"), "negative": float(record["label"] == "negative")}
        doc.ents = [doc.char_span(start, end, label=label) for start, end, label in record.get("entities", [])]
        doc_bin.add(doc)
    path = tmp_path / "made_by_spacy.spacy"
    doc_bin.to_disk(path)
    assert imported(path) == CLASSIFIED_AND_ENTITIES


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"foo": 1}, "fits no record spec"),
        ({"text": "Ada Lovelace", "entities": [[0, 2, "PERSON"]]}, "token boundaries"),
        ({"text": "Ada", "entities": [[0, 3]]}, "[start, end, label]"),
        ({"text": "Ada", "entities": "Ada"}, "expected a list"),
        ({"text": "Ada Lovelace", "entities": [[0, 12, "PERSON"], [4, 12, "PERSON"]]}, "overlap"),
        ({"text": "Ada", "label": 1}, "label must be a string"),
    ],
)
def test_spacy_export_names_the_record_and_problem_for_unsupported_shapes(tmp_path: Path, record: dict, problem: str) -> None:
    path = tmp_path / "bad.spacy"
    with pytest.raises(FormatError, match="record 1") as raised:
        export_records([CLASSIFIED_AND_ENTITIES[1], record], path)
    assert problem in str(raised.value) and str(path) in str(raised.value)
    assert not path.exists()


def test_pickle_import_is_refused_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "records.pkl"
    export_records(MIXED_RECORDS, path)
    with pytest.raises(FormatError, match="runs arbitrary code"):
        import_records(path)
    assert imported(path, allow_pickle=True) == MIXED_RECORDS


def test_chat_jsonl_turns_alpaca_into_valid_chats_rendered_by_the_chat_template(tmp_path: Path) -> None:
    alpaca = [r for r in MIXED_RECORDS if "instruction" in r]
    path = tmp_path / "train.chat.jsonl"
    assert export_records(alpaca, path, "chat_jsonl", tokenizer_path=DEFAULT_TOKENIZER_PATH) == 2
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    chat_spec = get_spec("chat_sft_v1")
    for line, record in zip(lines, alpaca, strict=True):
        assert chat_spec.check({"messages": line["messages"]}) is None
        assert line["messages"] == get_spec("instruction_v1").to_messages(record)
        assert line["text"].startswith("<|im_start|>user\n" + record["instruction"])
        assert line["text"].endswith(record["output"] + "<|im_end|>\n")


def test_chat_jsonl_without_tokenizer_has_messages_only_and_rejects_unknown_shapes(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    export_records(MIXED_RECORDS, path, "chat_jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(line.keys() == {"messages"} for line in lines)
    assert lines[4]["messages"] == [{"role": "user", "content": "1+1="}, {"role": "assistant", "content": "2"}]
    with pytest.raises(FormatError, match="record 0 fits no record spec"):
        export_records([{"question": "?"}], tmp_path / "bad.jsonl", "chat_jsonl")
    with pytest.raises(FormatError, match="export only"):
        import_records(path, "chat_jsonl")
    with pytest.raises(FormatError, match="unknown schema spec 'alpaca'"):
        export_records(MIXED_RECORDS, tmp_path / "x.jsonl", "chat_jsonl", spec="alpaca")
    with pytest.raises(FormatError, match=r"record 0 fits no record spec \(instruction_v1: messages: field not allowed"):
        export_records(MIXED_RECORDS, tmp_path / "x.jsonl", "chat_jsonl", spec="instruction_v1")
    with pytest.raises(FormatError, match="cannot load a tokenizer"):
        export_records(MIXED_RECORDS, tmp_path / "x.jsonl", "chat_jsonl", tokenizer_path=tmp_path / "no-tokenizer")


def test_failed_export_leaves_the_previous_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "train.chat.jsonl"
    export_records(MIXED_RECORDS, path, "chat_jsonl")
    before = path.read_bytes()
    with pytest.raises(FormatError):
        export_records([*MIXED_RECORDS, {"bad": True}], path, "chat_jsonl")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("broken.jsonl", '{"a": 1}\n{"a": \n{"b": 2}\n', "line 2, record #1: invalid JSON"),
        ("scalars.jsonl", '{"a": 1}\n[1]\n{"b": 2}\n', "line 2, record #1: record is an array, not a JSON object"),
        ("ragged.csv", "a,b\n1,2\n3\n4,5\n", "line 3, record #1: row has 1 columns, expected 2"),
        ("badcell.csv", 'a:json\n1\n{"x"\n2\n', "line 3, record #1: column a:json is not JSON"),
    ],
)
def test_a_bad_record_is_rejected_with_its_place_and_the_rest_imported(tmp_path: Path, name: str, content: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = import_records(path)
    [rejected] = result.rejected
    assert str(path) in rejected.issue.message and problem in rejected.issue.message
    assert rejected.raw == content.splitlines()[rejected.line - 1].encode()
    assert len(result.records) == 2


@pytest.mark.parametrize(
    ("name", "content", "fmt", "problem"),
    [
        ("object.json", '{"a": 1}', None, "must hold a JSON array of records"),
        ("truncated.json", '[{"a": 1}, {"a": 2', None, "inside the JSON array"),
        ("junk.parquet", "not parquet", None, "cannot read as Parquet"),
        ("junk.spacy", "not a docbin", None, "not a spaCy DocBin"),
        ("records.txt", "{}", None, "cannot tell the format from extension '.txt'"),
        ("records.jsonl", "{}", "xml", "cannot import format 'xml'"),
    ],
)
def test_a_bad_file_raises_an_error_naming_the_file_and_problem(
    tmp_path: Path, name: str, content: str, fmt: str | None, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError) as raised:
        import_records(path, fmt)
    assert str(raised.value).startswith(str(path)) and problem in str(raised.value)


def test_missing_paths_unknown_formats_and_non_dict_records_are_reported(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        import_records(tmp_path / "missing.jsonl")
    with pytest.raises(FormatError, match="not a Hugging Face dataset"):
        infer_format(tmp_path)
    with pytest.raises(FormatError, match="unknown export format 'xml'"):
        export_records(MIXED_RECORDS, tmp_path / "out.xml", "xml")
    with pytest.raises(FormatError, match="record 1 is a list"):
        export_records([{}, []], tmp_path / "out.jsonl")
