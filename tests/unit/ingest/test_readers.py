"""Reading messy inbox files: every record ends parsed or rejected with where and why."""

import codecs
import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tdm_dagster.ingest import (
    DEFAULT_MAX_RECORD_BYTES,
    FileProblem,
    SourceRecord,
    read_records,
)
from tests.support.fixture_data import GSM8K, ROLEPLAY, SEED_TASKS

MB = 1024 * 1024
GOOD = {"instruction": "Say hi.", "input": "", "output": "hi"}


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(path: Path, **options: int) -> tuple[list[SourceRecord], FileProblem | None]:
    """Every record read, and the file problem that stopped the read, if any."""
    records: list[SourceRecord] = []
    try:
        for record in read_records(path, **options):
            records.append(record)  # noqa: PERF402 - a loop keeps what was read before a FileProblem
    except FileProblem as problem:
        assert problem.records_read == len(records)
        return records, problem
    return records, None


def codes(records: list[SourceRecord]) -> list[str | None]:
    return [record.issue.code if record.issue else None for record in records]


def assert_one_of_value_or_issue(records: list[SourceRecord]) -> None:
    for record in records:
        assert (record.value is None) != (record.issue is None)
        if record.issue:
            assert record.issue.suite == "read" and record.issue.severity == "ERROR" and record.issue.suggestion


# --- the real public data --------------------------------------------------------------


@pytest.mark.parametrize("path", [ROLEPLAY, GSM8K], ids=lambda path: path.name)
def test_real_json_arrays_stream_to_the_same_records_as_json_load(path):
    expected = json.loads(path.read_bytes())
    records, problem = read_all(path)
    assert problem is None
    assert [record.value for record in records] == expected
    assert [record.index for record in records] == list(range(len(expected)))
    assert records[0].line == 2 and records[1].line > records[0].line
    assert all(json.loads(record.raw) == record.value for record in records[:50])


def test_real_jsonl_reads_every_line():
    path = SEED_TASKS
    lines = path.read_bytes().splitlines()
    records, problem = read_all(path)
    assert problem is None and len(records) == len(lines) == 175
    assert [record.raw for record in records] == lines
    assert [record.line for record in records] == list(range(1, 176))


# --- JSON lines --------------------------------------------------------------------------


def test_truncated_last_jsonl_line_is_rejected_and_says_so(tmp_path):
    path = write(tmp_path, "cut.jsonl", jsonl(GOOD, GOOD) + b'{"instruction": "Say')
    records, problem = read_all(path)
    assert problem is None
    assert codes(records) == [None, None, "read.invalid_json"]
    message = records[2].issue.message
    assert "cut.jsonl line 3, record #2" in message and "no newline" in message and "truncated" in message
    assert records[2].raw == b'{"instruction": "Say'


def test_invalid_utf8_rejects_only_its_line_and_gives_the_byte_offset(tmp_path):
    bad = b'{"instruction": "caf\xe9", "output": "x"}'
    path = write(tmp_path, "latin1.jsonl", jsonl(GOOD) + bad + b"\n" + jsonl(GOOD))
    records, _ = read_all(path)
    assert codes(records) == [None, "read.invalid_utf8", None]
    first_line = len(jsonl(GOOD))
    assert f"byte 20 of the record (byte {first_line + 20} of the file)" in records[1].issue.message
    assert "line 2" in records[1].issue.message
    assert records[1].raw == bad


def test_nul_byte_is_reported_with_its_offset(tmp_path):
    path = write(tmp_path, "nul.jsonl", b'{"a": 1}\n{"b": "x\x00y"}\n')
    records, _ = read_all(path)
    assert codes(records) == [None, "read.nul_byte"]
    assert "NUL byte at byte 8 of the record (byte 17 of the file)" in records[1].issue.message


def test_utf8_byte_order_mark_is_accepted_and_stripped(tmp_path):
    path = write(tmp_path, "bom.jsonl", codecs.BOM_UTF8 + jsonl(GOOD, GOOD))
    records, problem = read_all(path)
    assert problem is None and [record.value for record in records] == [GOOD, GOOD]
    assert records[0].raw == json.dumps(GOOD).encode()


def test_utf16_file_is_refused_as_a_whole(tmp_path):
    path = write(tmp_path, "wide.jsonl", codecs.BOM_UTF16_LE + json.dumps(GOOD).encode("utf-16-le"))
    records, problem = read_all(path)
    assert records == [] and problem.code == "read.unsupported_encoding" and "UTF-16" in str(problem)


def test_records_that_are_not_objects_are_reported_and_wrong_types_pass_to_the_gate(tmp_path):
    wrong_type = {"instruction": 5, "output": ["x"]}
    path = write(tmp_path, "kinds.jsonl", jsonl([1, 2], "text", None, 3.5, True, wrong_type))
    records, _ = read_all(path)
    assert codes(records) == ["read.not_an_object"] * 5 + [None]
    assert "record is an array, not a JSON object" in records[0].issue.message
    assert "record is null" in records[2].issue.message
    assert records[5].value == wrong_type


def test_blank_lines_are_not_records_and_lines_keep_their_numbers(tmp_path):
    path = write(tmp_path, "gaps.jsonl", b"\n" + jsonl(GOOD) + b"  \r\n\n" + json.dumps(GOOD).encode() + b"\r\n")
    records, problem = read_all(path)
    assert problem is None
    assert [(record.line, record.index) for record in records] == [(2, 0), (5, 1)]
    assert records[1].raw == json.dumps(GOOD).encode()


def test_every_line_is_accounted_for_in_a_messy_file(tmp_path):
    lines = [jsonl(GOOD), b"{broken\n", b"\xff\xfe\n", b"[1]\n", b'{"a": "\x00"}\n', jsonl(GOOD), b'{"x": 1']
    records, problem = read_all(write(tmp_path, "messy.ndjson", b"".join(lines)))
    assert problem is None
    assert len(records) == len(lines)
    assert_one_of_value_or_issue(records)
    assert sum(record.value is not None for record in records) + sum(record.issue is not None for record in records) == len(lines)


# --- records over the size limit ---------------------------------------------------------


def huge_line(size: int) -> bytes:
    head, tail = b'{"instruction": "', b'", "x": 1}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("name", ["huge.jsonl", "huge.json"])
def test_a_50mb_record_is_rejected_without_holding_it(tmp_path, name):
    big = huge_line(50 * MB)
    before, after = json.dumps(GOOD).encode(), json.dumps({**GOOD, "output": "bye"}).encode()
    if name.endswith(".jsonl"):
        data, big_line = before + b"\n" + big + b"\n" + after + b"\n", 2
    else:
        data, big_line = b"[\n" + before + b",\n" + big + b",\n" + after + b"\n]\n", 3
    path = write(tmp_path, name, data)
    del data
    limit = 4 * MB  # the peak allowed below stays far under the record's 50 MB
    tracemalloc.start()
    try:
        records, problem = read_all(path, max_record_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problem is None
    assert codes(records) == [None, "read.too_large", None]
    assert records[1].issue.message.endswith(f"record is {len(big)} bytes, over the limit {limit} bytes")
    assert records[1].line == big_line and records[2].line == big_line + 1
    assert records[1].raw == big[:1024]
    assert records[2].value["output"] == "bye"
    assert peak < 3 * limit, f"peak {peak / MB:.1f} MB while reading a 50 MB record"


def test_the_default_limit_applies_and_records_at_the_limit_pass(tmp_path):
    at_limit = huge_line(DEFAULT_MAX_RECORD_BYTES)
    over = huge_line(DEFAULT_MAX_RECORD_BYTES + 1)
    records, _ = read_all(write(tmp_path, "edge.jsonl", at_limit + b"\n" + over + b"\n"))
    assert len(at_limit) == DEFAULT_MAX_RECORD_BYTES
    assert codes(records) == [None, "read.too_large"]
    assert f"over the limit {DEFAULT_MAX_RECORD_BYTES} bytes" in records[1].issue.message


# --- JSON arrays -------------------------------------------------------------------------


def test_truncated_json_array_keeps_whole_elements_and_flags_the_cut_one(tmp_path):
    data = json.dumps([GOOD, GOOD, GOOD], indent=2).encode()
    path = write(tmp_path, "cut.json", data[: len(data) - 30])
    records, problem = read_all(path)
    assert codes(records) == [None, None, "read.truncated"]
    assert "ends inside this record" in records[2].issue.message and "cut.json line 12, record #2" in records[2].issue.message
    assert problem.code == "read.truncated_file" and problem.records_read == 3
    assert "no closing ']'" in str(problem)
    issue = problem.as_issue()
    assert (issue.code, issue.severity) == ("read.truncated_file", "ERROR") and issue.message.startswith(str(path))


def test_json_array_cut_between_elements_reads_them_all_and_reports_the_file(tmp_path):
    records, problem = read_all(write(tmp_path, "open.json", b"[" + json.dumps(GOOD).encode() + b",\n"))
    assert codes(records) == [None]
    assert problem.code == "read.truncated_file" and "line 2" in str(problem)


def test_a_broken_element_is_one_rejected_record_and_the_rest_still_reads(tmp_path):
    data = b'[\n  {"a": 1},\n  {"b":\n     },\n  {"c": [1, {"d": "],}{"}]},\n  7,,\n  {"e": 1}}, {"f": 2},\n]'
    records, problem = read_all(write(tmp_path, "broken.json", data))
    assert problem is None  # the trailing comma before ']' is tolerated
    assert codes(records) == [None, "read.invalid_json", None, "read.not_an_object", "read.invalid_json", "read.invalid_json", None]
    assert "broken.json line 3, record #1: invalid JSON at line 4 column 6" in records[1].issue.message
    assert records[2].value == {"c": [1, {"d": "],}{"}]}
    assert "empty array element" in records[4].issue.message
    assert records[5].raw == b'{"e": 1}}'
    assert records[6].value == {"f": 2} and records[6].index == 6


def test_elements_split_across_read_chunks_parse_like_json_load(tmp_path):
    tricky = ['quote \\" bracket ] { , ', "back\\slash\\", "\u00e9\u4e16\U0001f600", "[[{{", 'end"']
    elements = [{"i": i, "text": tricky[i % len(tricky)] * (i % 50), "nested": [[i], {"k": "}"}]} for i in range(30_000)]
    path = write(tmp_path, "tricky.json", json.dumps(elements, ensure_ascii=False).encode())
    assert path.stat().st_size > 3 * MB  # several 1 MB read chunks
    records, problem = read_all(path)
    assert problem is None and [record.value for record in records] == elements


def test_json_file_that_is_not_an_array_is_refused_with_a_hint(tmp_path):
    records, problem = read_all(write(tmp_path, "lines.json", jsonl(GOOD, GOOD)))
    assert records == [] and problem.code == "read.not_an_array"
    assert "starts with '{'" in str(problem) and ".jsonl" in problem.suggestion


def test_content_after_the_array_is_reported(tmp_path):
    records, problem = read_all(write(tmp_path, "two.json", b"[" + json.dumps(GOOD).encode() + b"]\n[1]"))
    assert codes(records) == [None]
    assert problem.code == "read.trailing_content" and "line 2" in str(problem) and problem.records_read == 1


def test_json_array_with_bom_and_invalid_utf8_element(tmp_path):
    data = codecs.BOM_UTF8 + b'[{"a": "ok"},\n {"b": "\xc3"}]'
    records, _ = read_all(write(tmp_path, "mixed.json", data))
    assert codes(records) == [None, "read.invalid_utf8"]
    assert "byte 7 of the record (byte 25 of the file)" in records[1].issue.message


# --- empty files and file-level problems -------------------------------------------------


@pytest.mark.parametrize(
    "name, data, detail",
    [
        ("empty.jsonl", b"", "file is empty (0 bytes)"),
        ("empty.json", b"", "file is empty (0 bytes)"),
        ("empty.csv", b"", "file is empty (0 bytes)"),
        ("blank.jsonl", b"\n  \n", "no records in the file (4 bytes)"),
        ("nothing.json", b" [ ] ", "no records in the file (5 bytes)"),
        ("header.csv", b"instruction,input,output\n", "no records in the file (25 bytes)"),
    ],
)
def test_a_file_without_records_is_reported(tmp_path, name, data, detail):
    records, problem = read_all(write(tmp_path, name, data))
    assert records == [] and problem.code == "read.empty_file"
    assert detail in str(problem) and "0 records" in str(problem)


def test_empty_parquet_is_reported(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()), "completion": pa.array([], pa.string())}), path)
    records, problem = read_all(path)
    assert records == [] and problem.code == "read.empty_file"


def test_unknown_extension_names_the_supported_ones(tmp_path):
    path = write(tmp_path, "data.jsonl.gz", b"\x1f\x8b")
    records, problem = read_all(path)
    assert records == [] and problem.code == "read.unknown_format"
    assert "'.gz'" in str(problem) and ".jsonl, .ndjson, .json, .csv, .parquet" in str(problem)
    assert read_all(write(tmp_path, "README", b"x"))[1].code == "read.unknown_format"


def test_missing_file_and_directory_are_file_problems(tmp_path):
    assert read_all(tmp_path / "missing.jsonl")[1].code == "read.io_error"
    (tmp_path / "folder.json").mkdir()
    assert read_all(tmp_path / "folder.json")[1].code == "read.io_error"


@pytest.mark.parametrize("name", ["with space.jsonl", "ünïcødé 数据.jsonl", "it's \"quoted\".jsonl", "-leading-dash.jsonl"])
def test_odd_file_names_read_and_appear_in_messages(tmp_path, name):
    path = write(tmp_path, name, jsonl(GOOD) + b"{oops}\n")
    records, problem = read_all(path)
    assert problem is None and codes(records) == [None, "read.invalid_json"]
    assert records[1].file == str(path) and records[1].issue.message.startswith(f"{path} line 2")


# --- CSV ---------------------------------------------------------------------------------


def test_csv_rows_become_records_and_ragged_rows_name_line_and_column_counts(tmp_path):
    data = (
        codecs.BOM_UTF8
        + b"instruction,input,output\n"
        + b"Add.,1 2,3\n"
        + b'"Say ""hi"", over\ntwo lines",,hi\n'
        + b"\n"
        + b"too,many,columns,here\n"
        + b"too few\n"
        + b'ok,,"fine"\r\n'
    )
    records, problem = read_all(write(tmp_path, "table.csv", data))
    assert problem is None
    assert codes(records) == [None, None, "read.ragged_row", "read.ragged_row", None]
    assert [record.line for record in records] == [2, 3, 6, 7, 8]
    assert records[0].value == {"instruction": "Add.", "input": "1 2", "output": "3"}
    assert records[1].value["instruction"] == 'Say "hi", over\ntwo lines'
    assert records[1].raw == b'"Say ""hi"", over\ntwo lines",,hi'
    assert "table.csv line 6, record #2: row has 4 columns, expected 3 (instruction, input, output)" in records[2].issue.message
    assert "row has 1 columns, expected 3" in records[3].issue.message
    assert records[4].raw == b'ok,,"fine"'


def test_csv_bad_quoting_nul_and_invalid_utf8_are_per_row(tmp_path):
    data = b'prompt,completion\na,"b"c\nx\x00,y\n\xff,z\ngood,row\nopen,"never closed\n'
    records, problem = read_all(write(tmp_path, "rows.csv", data))
    assert problem is None
    assert codes(records) == ["read.bad_csv", "read.nul_byte", "read.invalid_utf8", None, "read.bad_csv"]
    assert "rows.csv line 2" in records[0].issue.message
    assert records[3].value == {"prompt": "good", "completion": "row"}


def test_csv_row_over_the_limit(tmp_path):
    data = b"prompt,completion\n" + b"a," + b"b" * (2 * MB) + b"\nc,d\n"
    records, _ = read_all(write(tmp_path, "wide.csv", data), max_record_bytes=MB)
    assert codes(records) == ["read.too_large", None]
    assert f"record is {2 * MB + 2} bytes, over the limit {MB} bytes" in records[0].issue.message
    assert records[1].line == 3


@pytest.mark.parametrize(
    "header, detail",
    [
        (b"question,answer\n", "columns ['answer', 'question'] match no shape we accept"),
        (b"instruction,output,output\n", "header repeats column(s) ['output']"),
        (b"instruction,output,category\n", "category is not part of the alpaca shape"),
    ],
)
def test_csv_with_unexpected_columns_is_refused(tmp_path, header, detail):
    records, problem = read_all(write(tmp_path, "cols.csv", header + b"a,b,c\n"))
    assert records == [] and detail in str(problem)


# --- Parquet -----------------------------------------------------------------------------


def test_parquet_rows_stream_as_records(tmp_path):
    path = tmp_path / "rows.parquet"
    table = pa.table({"instruction": [f"q{i}" for i in range(2500)], "input": [None] * 2500, "output": ["a"] * 2500})
    pq.write_table(table, path, row_group_size=1000)
    records, problem = read_all(path)
    assert problem is None and len(records) == 2500
    assert records[0].value == {"instruction": "q0", "input": None, "output": "a"} and records[0].unit == "row"
    assert records[2499].line == 2500 and records[2499].where() == f"{path} row 2500, record #2499"
    assert json.loads(records[7].raw) == records[7].value


def test_parquet_with_an_unexpected_schema_names_the_columns(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"question": ["q"], "answer": ["a"], "score": [1.5]}), path)
    records, problem = read_all(path)
    assert records == [] and problem.code == "read.unexpected_schema"
    assert "columns ['answer', 'question', 'score']" in str(problem)
    assert "question: string, answer: string, score: double" in str(problem)
    assert "alpaca {instruction, output, input?} -> instruction_v1" in str(problem)


def test_a_file_that_is_not_parquet_is_refused(tmp_path):
    records, problem = read_all(write(tmp_path, "fake.parquet", jsonl(GOOD)))
    assert records == [] and problem.code == "read.not_parquet"
