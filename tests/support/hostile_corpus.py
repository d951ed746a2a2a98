"""A corpus of hostile input files, for any test that reads files the way users drop them.

Each ``HostileKind`` builds one real file (bytes) and says what a correct reader makes of
it: how many records it holds (``records``), which read problems must be among the
rejections (``read_codes``: the ``read.*`` codes), and, for a file that cannot be read as
a whole, the file problem's code (``file_problem``; ``records`` then counts the records
read before it). Records that read fine may still be rejected later (shape, schema,
content): the corpus does not predict that, only that every record ends somewhere.

Most files put the hostile record between two good ones, so a test also sees that one bad
record does not take its neighbours down with it.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_RECORD_BYTES = 8 * 1024 * 1024
"""The default ``gate.max_record_bytes``: the over-the-limit kinds are built just past it."""


@dataclass(frozen=True)
class HostileKind:
    kind: str
    file_name: str
    build: Callable[[], bytes]
    records: int
    read_codes: frozenset[str] = frozenset()
    file_problem: str | None = None
    import_refused: bool = False
    """``tdm datasets import`` refuses the whole file (what our own exports record in it is hostile)."""

    def write(self, folder: Path) -> Path:
        path = folder / self.file_name
        path.write_bytes(self.build())
        return path


def good(number: int) -> dict:
    """A distinct, acceptable alpaca record."""
    return {
        "instruction": f"Explain step {number} of making tea to a beginner.",
        "input": "",
        "output": f"Step {number}: boil fresh water, warm the pot, and let the leaves steep for {number + 2} minutes.",
    }


def _line(record: object) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def around(bad: bytes, *, newline: bytes = b"\n") -> bytes:
    """Good record, ``bad`` line, good record: three records, one newline-terminated line each."""
    return newline.join([_line(good(1)), bad, _line(good(2))]) + newline


def _alpaca_with(output_json: str) -> bytes:
    """An alpaca line whose output is the given raw JSON text (not necessarily valid)."""
    return f'{{"instruction": "Repeat the value.", "input": "", "output": {output_json}}}'.encode()


def _with_metadata(metadata_json: str) -> bytes:
    return ('{"instruction": "Name a colour.", "input": "", "output": "Blue is a colour.", "metadata": ' + metadata_json + "}").encode()


def _jsonl(kind: str, bad: bytes | Callable[[], bytes], *codes: str) -> HostileKind:
    """Good, ``bad`` (or what it builds: big lines are built only when written), good."""
    return HostileKind(kind, f"{kind}.jsonl", lambda: around(bad() if callable(bad) else bad), 3, frozenset(codes))


def _array(kind: str, elements: list[bytes], records: int, *codes: str, file_problem: str | None = None, tail: bytes = b"]") -> HostileKind:
    return HostileKind(kind, f"{kind}.json", lambda: b"[" + b",\n".join(elements) + tail, records, frozenset(codes), file_problem)


def _csv(kind: str, text: bytes, records: int, *codes: str, file_problem: str | None = None) -> HostileKind:
    return HostileKind(kind, f"{kind}.csv", lambda: text, records, frozenset(codes), file_problem)


def _parquet_bytes(columns: dict, schema=None, metadata: dict | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns, schema=schema)
    if metadata is not None:
        table = table.replace_schema_metadata(metadata)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _alpaca_columns(n: int = 3) -> dict:
    rows = [good(i) for i in range(n)]
    return {key: [row[key] for row in rows] for key in ("instruction", "input", "output")}


def _parquet(kind: str, extra: Callable[[], dict], *codes: str) -> HostileKind:
    """Three alpaca rows plus the ``extra`` columns, hostile in some rows."""
    return HostileKind(kind, f"{kind}.parquet", lambda: _parquet_bytes({**_alpaca_columns(), **extra()}), 3, frozenset(codes))


def _metadata_column(values: list, value_type) -> dict:
    import pyarrow as pa

    return {"metadata": pa.array(values, type=value_type)}


def _parquet_datetime() -> dict:
    import pyarrow as pa

    when = datetime.datetime(2024, 5, 1, 12, 30)
    return _metadata_column([{"source": "a", "created": None}, {"source": "b", "created": when}, {"source": "c", "created": None}],
                            pa.struct([("source", pa.string()), ("created", pa.timestamp("us"))]))  # fmt: skip


def _parquet_decimal() -> dict:
    import pyarrow as pa

    return _metadata_column([None, {"price": decimal.Decimal("12.50")}, None], pa.struct([("price", pa.decimal128(10, 2))]))


def _parquet_binary() -> dict:
    import pyarrow as pa

    return _metadata_column([None, {"blob": b"\x00\xffbinary"}, None], pa.struct([("blob", pa.binary())]))


def _parquet_date_and_time() -> dict:
    import pyarrow as pa

    return _metadata_column([None, {"day": datetime.date(2024, 1, 2), "at": datetime.time(3, 4)}, None],
                            pa.struct([("day", pa.date32()), ("at", pa.time64("us"))]))  # fmt: skip


def _parquet_nan() -> dict:
    import pyarrow as pa

    return _metadata_column([{"score": 0.5}, {"score": float("nan")}, {"score": float("inf")}], pa.struct([("score", pa.float64())]))


def _parquet_out_of_range_timestamp() -> dict:
    import pyarrow as pa

    far = 400_000_000_000  # seconds: year ~14,600, which Python's datetime cannot hold
    stamps = pa.array([0, far, 0], pa.int64()).cast(pa.timestamp("s"))
    return {"metadata": pa.StructArray.from_arrays([stamps], names=["at"])}


def _parquet_map() -> dict:
    import pyarrow as pa

    return _metadata_column([None, [("k", "v")], None], pa.map_(pa.string(), pa.string()))


def _parquet_nested() -> dict:
    """Lists of structs of lists: deep but all JSON; every row reads."""
    import pyarrow as pa

    value_type = pa.struct([("tags", pa.list_(pa.struct([("names", pa.list_(pa.string()))])))])
    return _metadata_column([{"tags": [{"names": ["a", "b"]}]}, {"tags": []}, None], value_type)


def _parquet_wrong_metadata() -> bytes:
    """Schema metadata claiming JSON columns with text that is not JSON (and nested deep)."""
    return _parquet_bytes(_alpaca_columns(), metadata={b"tdm_dagster.json_columns": b"[" * 5000})


def _huge_line() -> bytes:
    return _alpaca_with(json.dumps("x" * (MAX_RECORD_BYTES + 10)))


def _hundred_thousand_messages() -> bytes:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(100_000)]
    return _line({"messages": messages})


def _mixed_shapes() -> bytes:
    lines = [
        good(1),
        {"messages": [{"role": "user", "content": "Hi there, how are you?"}, {"role": "assistant", "content": "Very well, thank you."}]},
        {"prompt": "Complete: the sky is", "completion": " blue on a clear day."},
        {"conversations": [{"from": "human", "value": "Name a fruit."}, {"from": "gpt", "value": "An apple is a fruit."}]},
    ]
    return b"".join(_line(record) + b"\n" for record in lines)


def _deep(levels: int) -> bytes:
    return _alpaca_with("[" * levels + "]" * levels)


CORPUS: tuple[HostileKind, ...] = (
    # --- JSON values that Python's json reads but nothing after it can hold ----------------
    _jsonl("nesting_5000_levels", _deep(5000), "read.too_deep"),
    _jsonl("nesting_150_levels", _deep(150), "read.too_deep"),
    _jsonl("nested_objects_5000", _alpaca_with('{"a":' * 5000 + "1" + "}" * 5000), "read.too_deep"),
    _jsonl("integer_5000_digits", _alpaca_with("9" * 5000), "read.integer_too_long"),
    _jsonl("negative_integer_5000_digits", _with_metadata('{"n": -' + "7" * 5000 + "}"), "read.integer_too_long"),
    _jsonl("lone_high_surrogate", _alpaca_with('"bad \\ud800 text"'), "read.lone_surrogate"),
    _jsonl("lone_low_surrogate", _alpaca_with('"bad \\udfff"'), "read.lone_surrogate"),
    _jsonl("lone_surrogate_in_key", _with_metadata('{"\\ud800key": 1}'), "read.lone_surrogate"),
    _jsonl("nan_literal", _with_metadata('{"score": NaN}'), "read.non_finite_number"),
    _jsonl("infinity_literal", _with_metadata('{"score": Infinity}'), "read.non_finite_number"),
    _jsonl("negative_infinity_literal", _with_metadata('{"score": -Infinity}'), "read.non_finite_number"),
    _jsonl("float_overflow_1e999", _with_metadata('{"score": 1e999}'), "read.non_finite_number"),
    _jsonl("float_overflow_negative", _with_metadata('{"score": -1.5e400}'), "read.non_finite_number"),
    _jsonl("duplicate_keys", b'{"instruction": "Say hi.", "input": "", "output": "first", "output": "second"}', "read.duplicate_key"),
    # --- bytes and encodings -----------------------------------------------------------------
    HostileKind("utf8_byte_order_mark", "utf8_byte_order_mark.jsonl", lambda: b"\xef\xbb\xbf" + around(_line(good(3))), 3),
    _jsonl("nul_byte", b'{"instruction": "a\x00b", "input": "", "output": "c"}', "read.nul_byte"),
    _jsonl("invalid_utf8", b'{"instruction": "caf\xe9", "input": "", "output": "x"}', "read.invalid_utf8"),
    _jsonl("overlong_utf8", b'{"instruction": "slash \xc0\xaf", "input": "", "output": "x"}', "read.invalid_utf8"),
    _jsonl("utf8_encoded_surrogate", b'{"instruction": "cesu \xed\xa0\x80", "input": "", "output": "x"}', "read.invalid_utf8"),
    HostileKind("utf16_file", "utf16_file.jsonl", lambda: around(_line(good(3))).decode().encode("utf-16"), 0,
                file_problem="read.unsupported_encoding"),  # fmt: skip
    HostileKind("crlf_line_ends", "crlf_line_ends.jsonl", lambda: around(_line(good(3)), newline=b"\r\n"), 3),
    # --- lines and structure -------------------------------------------------------------
    HostileKind("truncated_last_record", "truncated_last_record.jsonl", lambda: around(_line(good(3)))[:-25], 3, frozenset({"read.invalid_json"})),
    HostileKind("blank_and_whitespace_lines", "blank_and_whitespace_lines.jsonl",
                lambda: b"\n  \n" + _line(good(1)) + b"\n\t\n\n" + _line(good(2)) + b"\n \n", 2),  # fmt: skip
    HostileKind("whitespace_only", "whitespace_only.jsonl", lambda: b"  \n\t\n \r\n", 0, file_problem="read.empty_file"),
    HostileKind("empty_file", "empty_file.jsonl", lambda: b"", 0, file_problem="read.empty_file"),
    _jsonl("top_level_number", b"42", "read.not_an_object"),
    _jsonl("top_level_array", b'[{"instruction": "a", "output": "b"}]', "read.not_an_object"),
    _jsonl("top_level_string", b'"just text"', "read.not_an_object"),
    _jsonl("top_level_null", b"null", "read.not_an_object"),
    _jsonl("not_json_at_all", b"instruction = say hi", "read.invalid_json"),
    # --- fields: types, emptiness, unknown and missing -----------------------------------
    _jsonl("integer_in_text_field", b'{"instruction": 5, "input": "", "output": "five"}'),
    _jsonl("list_in_text_field", b'{"instruction": ["a", "b"], "input": "", "output": "x"}'),
    _jsonl("object_in_text_field", b'{"instruction": {"text": "a"}, "input": "", "output": "x"}'),
    _jsonl("null_in_text_field", b'{"instruction": null, "input": "", "output": "x"}'),
    _jsonl("empty_strings", b'{"instruction": "", "input": "", "output": ""}'),
    _jsonl("unknown_field", b'{"instruction": "Say hi.", "input": "", "output": "hi", "debug": true}'),
    _jsonl("missing_field", b'{"instruction": "Say hi."}'),
    _jsonl("non_string_message_content", b'{"messages": [{"role": "user", "content": 7}, {"role": "assistant", "content": null}]}'),
    HostileKind("mixed_shapes", "mixed_shapes.jsonl", _mixed_shapes, 4),
    _jsonl("zero_width_rtl_control_chars",
           _line({"instruction": "Say\u200b hi\u202e reversed\u0007 bell \u0000 nul \u2028 sep", "input": "\u200f", "output": "\ufeffhi"})),  # fmt: skip
    # --- size --------------------------------------------------------------------------------
    _jsonl("line_over_the_record_limit", _huge_line, "read.too_large"),
    _jsonl("record_of_100k_messages", _hundred_thousand_messages),
    # --- JSON arrays ----------------------------------------------------------------------
    _array("array_with_deep_element", [_line(good(1)), _deep(3000), _line(good(2))], 3, "read.too_deep"),
    _array("array_with_nan_and_surrogate", [_line(good(1)), _with_metadata("[NaN]"), _alpaca_with('"\\ud834"'), _line(good(2))], 4,
           "read.non_finite_number", "read.lone_surrogate"),  # fmt: skip
    _array("array_with_empty_element", [_line(good(1)), b"", _line(good(2))], 3, "read.invalid_json"),
    _array("array_truncated", [_line(good(1)), _line(good(2))[:-10]], 2, "read.truncated", file_problem="read.truncated_file", tail=b""),
    HostileKind("json_top_level_object", "json_top_level_object.json", lambda: _line(good(1)), 0, file_problem="read.not_an_array"),
    HostileKind("json_top_level_scalar", "json_top_level_scalar.json", lambda: b"3.14", 0, file_problem="read.not_an_array"),
    # --- CSV -------------------------------------------------------------------------------
    _csv("csv_formula_cells", b'instruction,input,output\n=HYPERLINK("http://x"),@SUM(A1),+1+1\n-2+3,"\tcmd","\rcr"\n', 2),
    _csv("csv_embedded_newlines", b'instruction,input,output\n"line one\nline two","","multi\r\nline"\nplain,,row\n', 2),
    _csv("csv_ragged_rows", b"instruction,input,output\na,b,c\nonly,two\nd,e,f,g\nh,i,j\n", 4, "read.ragged_row"),
    _csv("csv_unclosed_quote", b'instruction,input,output\na,b,c\n"never closed,x,y\n', 2, "read.bad_csv"),
    _csv("csv_nul_and_bad_utf8", b"instruction,input,output\na,b,c\nd\x00,e,f\ng\xff,h,i\nj,k,l\n", 4, "read.nul_byte", "read.invalid_utf8"),
    _csv("csv_header_only", b"instruction,input,output\n", 0, file_problem="read.empty_file"),
    # --- Parquet ----------------------------------------------------------------------------
    _parquet("parquet_datetime_in_metadata", _parquet_datetime, "read.not_json_type"),
    _parquet("parquet_decimal_in_metadata", _parquet_decimal, "read.not_json_type"),
    _parquet("parquet_binary_in_metadata", _parquet_binary, "read.not_json_type"),
    _parquet("parquet_date_and_time", _parquet_date_and_time, "read.not_json_type"),
    _parquet("parquet_nan_and_infinity", _parquet_nan, "read.non_finite_number"),
    _parquet("parquet_timestamp_out_of_range", _parquet_out_of_range_timestamp, "read.unconvertible_value"),
    _parquet("parquet_map_column", _parquet_map, "read.not_json_type"),
    _parquet("parquet_nested_lists_of_structs", _parquet_nested),
    HostileKind("parquet_hostile_schema_metadata", "parquet_hostile_schema_metadata.parquet", _parquet_wrong_metadata, 3,
                import_refused=True),  # fmt: skip
    HostileKind("parquet_truncated", "parquet_truncated.parquet", lambda: _parquet_bytes(_alpaca_columns())[:-40], 0,
                file_problem="read.not_parquet"),  # fmt: skip
)
KINDS = {kind.kind: kind for kind in CORPUS}
assert len(KINDS) == len(CORPUS), "every kind has its own name"
