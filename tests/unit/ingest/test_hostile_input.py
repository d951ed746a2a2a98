"""Hostile input through every reader: each record ends accepted or rejected with where and why.

Every kind of ``tests/support/hostile_corpus.py`` goes, as a real file, through the real code
paths: ``tdm validate`` (its Python entry, and the CLI in a real process for the worst
kinds), the inbox's read → gate → rejected/ + queue path, ``tdm datasets import``, and
``tdm recheck`` for queue files. Each must not crash, must account for every input record
(input = accepted + rejected), and must say where each rejected record was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.cli import main
from tdm_dagster.ingest.collectors import conversation_logs
from tdm_dagster.config.settings import load_config
from tdm_dagster.datasets.records import canonical_json
from tdm_dagster.formats import FormatError, export_records, import_records
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.load import load_file
from tdm_dagster.queue.recheck import recheck_queue
from tdm_dagster.gate.reports import save_outcome
from tdm_dagster.records.strict_json import loads_strict
from tdm_dagster.queue.store import TrainingQueue
from tdm_dagster.gate.validate_file import validate_file
from tests.support.hostile_corpus import CORPUS, KINDS, HostileKind

TDM = Path(sys.executable).parent / "tdm"
KIND_IDS = [kind.kind for kind in CORPUS]
WORST = ["nesting_5000_levels", "lone_high_surrogate", "parquet_datetime_in_metadata"]


def test_the_corpus_has_at_least_forty_kinds() -> None:
    assert len(CORPUS) >= 40


def _located(message: str, path: Path) -> bool:
    """A read problem's message names the file and the line (or Parquet row / spaCy doc) of the record."""
    return str(path) in message and any(f"{unit} " in message for unit in ("line", "row", "doc"))


def _strict_jsonl(path: Path) -> list:
    """Every line of a file we wrote, parsed as strict JSON (NaN, lone surrogates, ... raise).
    Lines end at "\n" only, as JSON lines do (a record may hold U+2028)."""
    return [loads_strict(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.mark.parametrize("kind", CORPUS, ids=KIND_IDS)
def test_validate_accounts_for_every_record(kind: HostileKind, home: TdmHome, tmp_path: Path) -> None:
    path = kind.write(tmp_path)
    result = validate_file(path, load_config(home), home=home)
    totals = result["totals"]
    assert totals["input_records"] == kind.records
    assert totals["accepted"] + totals["rejected"] == totals["records"]
    codes = {issue["code"] for issue in result["issues"]}
    assert kind.read_codes <= codes, result["issues"]
    if kind.file_problem:
        assert not result["readable"] and kind.file_problem in codes and str(path) in result["file_problem"]
    for issue in result["issues"]:
        if issue["code"].startswith("read.") and issue["code"] != kind.file_problem:
            assert issue["line"] is not None and _located(issue["message"], path), issue
    json.dumps(result, allow_nan=False)  # what --json prints is strict JSON too


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("nan_literal", "metadata.score"), ("float_overflow_1e999", "metadata.score"), ("integer_5000_digits", "output"),
        ("lone_high_surrogate", "output"), ("lone_surrogate_in_key", "metadata.\\ud800key"), ("duplicate_keys", "output"),
        ("array_with_nan_and_surrogate", "metadata[0]"), ("parquet_datetime_in_metadata", "metadata.created"),
        ("parquet_decimal_in_metadata", "metadata.price"), ("parquet_timestamp_out_of_range", "metadata"),
    ],
)  # fmt: skip
def test_a_rejected_value_names_its_field(name: str, field: str, tmp_path: Path) -> None:
    loaded = load_file(KINDS[name].write(tmp_path))
    fields = {issue.field for found in loaded.issues.values() for issue in found if issue.code in KINDS[name].read_codes}
    assert field in fields


@pytest.mark.parametrize("kind", CORPUS, ids=KIND_IDS)
def test_the_inbox_path_queues_or_rejects_every_record_with_its_bytes(kind: HostileKind, home: TdmHome, tmp_path: Path) -> None:
    """What the inbox assets do, step by step: read, keep the batch, gate, write rejected/ and the queue."""
    path, batch_id, config = kind.write(tmp_path), "inbox_hostile", load_config(home)
    store = BatchStore(home)
    loaded = load_file(path, max_record_bytes=config.gate.max_record_bytes)
    assert loaded.input_records == kind.records
    store.save_ingested(batch_id, loaded)
    gate_input = GateInput.from_batch(store, batch_id)
    outcome = run_gate(gate_input, config)
    save_outcome(home, batch_id, gate_input.records, outcome, sources=gate_input.sources)
    if outcome.batch_approved:
        TrainingQueue(home).enqueue(batch_id, store.load_approved(batch_id), "normal")

    assert outcome.total == len(loaded.records)
    assert len(outcome.approved_indices) + len(outcome.rejected) == outcome.total
    rejected_file = home.rejected_dir / f"{batch_id}.jsonl"
    rows = _strict_jsonl(rejected_file) if rejected_file.exists() else []
    assert len(rows) == len(outcome.rejected)
    for row in rows:
        assert row["reasons"] and all(reason["message"] for reason in row["reasons"])
        if row["reasons"][0]["code"].startswith(("read.", "shape.")) and row["reasons"][0]["code"] != kind.file_problem:
            assert "raw" in row["source"] or "raw_base64" in row["source"]
            assert row["source"]["line"] >= 1 and _located(row["reasons"][0]["message"], path)
    assert kind.read_codes <= {row["reasons"][0]["code"] for row in rows}
    for written in [*store.folder(batch_id).glob("*.jsonl"), *home.queue_dir("normal").glob("*.jsonl")]:
        _strict_jsonl(written)


@pytest.mark.parametrize("kind", CORPUS, ids=KIND_IDS)
def test_datasets_import_adds_what_it_can_and_keeps_the_rest_with_reasons(kind: HostileKind, home: TdmHome, tmp_path: Path) -> None:
    path = kind.write(tmp_path)
    result = CliRunner().invoke(main, ["datasets", "import", "hostile", str(path), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    if kind.file_problem or kind.import_refused:
        assert result.exit_code == 1 and (str(path) in result.output or "no record could be read" in result.output), result.output
        return
    if result.exit_code == 1:  # every record rejected (unreadable, or by the gate): nothing added, all kept with reasons
        assert "no record could be read" in result.output or "no record passed the gate" in result.output
        version_records, rejected_rows = 0, _strict_jsonl(next(home.rejected_dir.glob("dataset_hostile_*.jsonl")))
    else:
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        version_records = data["record_count"]
        rejected_rows = _strict_jsonl(Path(data["rejected_file"])) if data["rejected_file"] else []
        assert data["rejected"] == len(rejected_rows)
    assert version_records + len(rejected_rows) == kind.records
    assert kind.read_codes <= {row["reasons"][0]["code"] for row in rejected_rows}
    for row in rejected_rows:
        assert _located(row["reasons"][0]["message"], path) and ("raw" in row["source"] or "raw_base64" in row["source"])


JSONL_KINDS = [kind for kind in CORPUS if kind.file_name.endswith(".jsonl")]


@pytest.mark.parametrize("kind", JSONL_KINDS, ids=[kind.kind for kind in JSONL_KINDS])
def test_recheck_of_a_hostile_queue_file_accounts_for_every_record(kind: HostileKind, home: TdmHome, tmp_path: Path) -> None:
    queued = home.queue_dir("normal") / f"{kind.kind}.jsonl"
    queued.parent.mkdir(parents=True, exist_ok=True)
    queued.write_bytes(kind.build())
    [verdict] = recheck_queue(home, load_config(home)).files
    if kind.file_problem:
        assert verdict.verdict == "held" and str(queued.name) in verdict.reasons[0]
        return
    assert verdict.records == kind.records
    if verdict.verdict == "trimmed":
        rows = _strict_jsonl(home.rejected_dir / f"{kind.kind}.recheck.jsonl")
        assert len(rows) == verdict.removed and len(_strict_jsonl(queued)) == kind.records - verdict.removed
    else:
        assert verdict.verdict in ("passed", "held")


READABLE_JSONL_KINDS = [kind for kind in JSONL_KINDS if not kind.file_problem]


@pytest.mark.parametrize("kind", READABLE_JSONL_KINDS, ids=[kind.kind for kind in READABLE_JSONL_KINDS])
def test_the_conversation_log_collector_accounts_for_every_line(kind: HostileKind, tmp_path: Path) -> None:
    log = kind.write(tmp_path)
    result = conversation_logs(log)
    assert len(result.records) + len(result.problems) + result.skipped == kind.records
    assert all(problem["line"] >= 1 and problem["reason"] for problem in result.problems)
    for record in result.records:
        json.dumps(record, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("name", WORST)
def test_the_real_cli_reports_instead_of_crashing(name: str, home: TdmHome, tmp_path: Path) -> None:
    """``tdm validate`` and ``tdm datasets add/import`` in real processes: a summary, never a traceback."""
    kind = KINDS[name]
    path = kind.write(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    commands = [["validate", str(path)], ["datasets", "import", "hostile", str(path)]]
    if path.suffix == ".jsonl":
        commands.append(["datasets", "add", "hostile", str(path)])
    for command in commands:
        run = subprocess.run([str(TDM), *command], capture_output=True, text=True, env=env, timeout=120)
        assert "Traceback" not in run.stderr + run.stdout, (command, run.stderr)
        assert run.returncode in (0, 1), (command, run.returncode, run.stderr)
        assert kind.file_name in run.stdout + run.stderr, (command, run.stdout, run.stderr)


# --- NaN and Infinity never reach the queue or a version ---------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_writers_refuse_non_finite_numbers_and_leave_nothing_behind(value: float, home: TdmHome, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    record = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"score": value}}
    with pytest.raises(ValueError, match="not JSON compliant"):
        TrainingQueue(home).enqueue("b1", [record], "normal")
    assert list(home.queue_dir("normal").iterdir()) == []
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_jsonl(out / "batch.jsonl", [record])
    assert list(out.iterdir()) == []
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json(record)
    for fmt in ("jsonl", "json", "csv", "parquet"):
        with pytest.raises(FormatError, match="not JSON compliant"):
            export_records([record], out / f"out.{fmt}", fmt)
    assert list(out.iterdir()) == []


# --- CSV formulas -------------------------------------------------------------------------------

FORMULA_RECORDS = [
    {"text": text, "n": number}
    for text, number in [
        ("=HYPERLINK(\"http://evil\")", -1), ("+1+1", 2), ("-2", -3.5), ("@SUM(A1:A2)", 0), ("\tTAB", 1), ("\rCR", 1),
        ("'=already quoted", 1), ("'", 1), ("''", 1), ("'plain", 1), ("plain = fine", 1), ("", 1), ("=", 1),
    ]
]  # fmt: skip


def test_csv_export_neutralises_formulas_and_import_restores_every_value(tmp_path: Path) -> None:
    path = tmp_path / "formulas.csv"
    export_records(FORMULA_RECORDS, path)
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["text", "n:json"]
    for cell in (cell for row in rows for cell in row):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell  # no spreadsheet runs any of them
    assert [row[0] for row in rows[:7]] == ["'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2", "'@SUM(A1:A2)", "'\tTAB", "'\rCR", "''=already quoted"]
    assert rows[1][1] == "2" and rows[0][1] == "'-1"
    imported = import_records(path)
    assert imported.rejected == [] and imported.records == FORMULA_RECORDS


# --- DocBin compression bomb --------------------------------------------------------------------

BOMB_SCRIPT = textwrap.dedent(
    """
    import resource, struct, sys, time, zlib
    from pathlib import Path
    from tdm_dagster.formats import FormatError, import_records
    from tdm_dagster.formats.spacy_docbin import MAX_DOCBIN_BYTES

    # a DocBin-shaped msgpack map whose "tokens" claim and hold MAX + 64 MiB of zeros, zlib-compressed
    size = MAX_DOCBIN_BYTES + 64 * 1024 * 1024
    compressor = zlib.compressobj(9)
    zeros = bytes(16 * 1024 * 1024)
    with open(sys.argv[1], "wb") as out:
        out.write(compressor.compress(b"\\x81\\xa6tokens\\xc6" + struct.pack(">I", size)))
        for _ in range(size // len(zeros)):
            out.write(compressor.compress(zeros))
        out.write(compressor.flush())
    del zeros
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        import_records(Path(sys.argv[1]))
        print("IMPORTED")
    except FormatError as exc:
        print("REFUSED", exc)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print("GROWN_KIB", grown, "SECONDS", round(time.monotonic() - started, 2), "FILE", Path(sys.argv[1]).stat().st_size)
    """
)


def test_a_docbin_bomb_is_refused_early_with_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.spacy"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    run = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(bomb)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    refused, measured = run.stdout.strip().splitlines()
    assert refused.startswith(f"REFUSED {bomb}: refused: decompresses to over 536870912 bytes"), refused
    _, grown_kib, _, seconds, _, file_size = measured.split()
    assert int(file_size) < 2 * 1024 * 1024  # a small file ...
    assert int(grown_kib) < 64 * 1024, measured  # ... that never got near its 576 MiB in memory
    assert float(seconds) < 30


# --- binary formats: pickle, Hugging Face folders, spaCy DocBin -----------------------------------


def _hostile_pickle(path: Path) -> None:
    import datetime
    import pickle

    deep: list = []
    for _ in range(150):  # past MAX_DEPTH (100), within what pickle itself can write
        deep = [deep]
    records = [{"text": "fine"}, {"text": "nan", "score": float("nan")}, {"text": "when", "at": datetime.date(2024, 1, 1)},
               {"text": "deep", "nested": deep}, ["not", "a", "dict"], {"text": "\ud800"}, {"text": "also fine"}]  # fmt: skip
    path.write_bytes(pickle.dumps(records))


def _hostile_hf(path: Path) -> None:
    import datetime

    import datasets

    datasets.Dataset.from_dict(
        {"text": ["fine", "when", "also fine"], "at": [None, datetime.datetime(2024, 1, 1), None]}
    ).save_to_disk(str(path))


def _hostile_docbin(path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    from tdm_dagster.formats.spacy_docbin import RECORD_KEY

    nlp, doc_bin = spacy.blank("en"), DocBin(store_user_data=True)
    for stored in ['{"text": "fine"}', '{"text": "nan", "score": NaN}', '{"text": "dup", "text": "again"}', "[1, 2]", '{"text": "ok"}']:
        doc = nlp.make_doc("some text")
        doc.user_data[RECORD_KEY] = stored
        doc_bin.add(doc)
    path.write_bytes(doc_bin.to_bytes())


@pytest.mark.parametrize(
    ("name", "build", "kept", "codes"),
    [
        ("records.pkl", _hostile_pickle, 2, {"read.non_finite_number", "read.not_json_type", "read.too_deep", "read.not_an_object", "read.lone_surrogate"}),
        ("records_hf", _hostile_hf, 2, {"read.not_json_type"}),
        ("records.spacy", _hostile_docbin, 2, {"read.non_finite_number", "read.duplicate_key", "read.not_an_object"}),
    ],
)  # fmt: skip
def test_binary_formats_reject_hostile_records_one_by_one(tmp_path: Path, name: str, build, kept: int, codes: set[str]) -> None:
    path = tmp_path / name
    build(path)
    result = import_records(path, allow_pickle=True)
    assert len(result.records) == kept
    assert {source.issue.code for source in result.rejected} == codes
    for source in result.rejected:
        assert str(path) in source.issue.message and source.raw
    for record in result.records:
        canonical_json(record)
