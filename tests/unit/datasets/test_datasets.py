"""The dataset registry on real DuckDB and Parquet: versions, storage, integrity, splits, steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.datasets import (
    AdjustConfidence,
    BalanceClasses,
    CleanText,
    CorruptObjectError,
    DatasetExistsError,
    DatasetNotFoundError,
    DatasetRegistry,
    DeletionRefusedError,
    DropExactDuplicates,
    DropNearDuplicates,
    FieldFilter,
    Filter,
    IntegrityError,
    MissingObjectError,
    RemapLabel,
    VersionExistsError,
    assign_splits,
)
from tdm_dagster.datasets.records import conversation_text
from tdm_dagster.gate.dedup import NearDuplicateIndex, exact_key
from tdm_dagster.generate.generators import get_generator
from tests.support.fixture_data import GSM8K


def chat(prompt: str, answer: str, **metadata) -> dict:
    return {
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        "metadata": metadata,
    }


def numbered(count: int, start: int = 0, **metadata) -> list[dict]:
    return [chat(f"question number {i}", f"answer {i}", **metadata) for i in range(start, start + count)]


@pytest.fixture
def registry(home) -> DatasetRegistry:
    return DatasetRegistry(home)


@pytest.fixture
def two_versions(registry: DatasetRegistry) -> DatasetRegistry:
    registry.create("math", description="arithmetic", owner="ana", tags=["math", "v1"], spec="chat")
    registry.append("math", numbered(50), source_batches=["b1"], metrics={"pass_rate": 0.9})
    registry.append("math", numbered(10, start=50), source_batches=["b2"], metrics={"pass_rate": 0.95})
    return registry


def chunk_files(registry: DatasetRegistry) -> list[Path]:
    return sorted((registry.store.root / "chunks").glob("*/*.parquet"))


def test_create_list_describe(registry: DatasetRegistry) -> None:
    info = registry.create("math", description="arithmetic", owner="ana", tags=["a", "b"], spec="chat")
    assert (info.name, info.owner, info.tags, info.spec, info.current_version) == ("math", "ana", ["a", "b"], "chat", None)
    registry.create("words")
    assert [d.name for d in registry.list_datasets()] == ["math", "words"]
    assert registry.describe("math").description == "arithmetic"
    assert registry.catalog_path == registry.root / "catalog.duckdb"
    with pytest.raises(DatasetExistsError, match="'math'"):
        registry.create("math")
    with pytest.raises(DatasetNotFoundError, match="'nope'"):
        registry.describe("nope")


def test_versions_carry_lineage_and_checksums(two_versions: DatasetRegistry) -> None:
    first, second = two_versions.versions("math")
    assert (first.version, second.version) == ("1.0", "1.1")
    assert (first.record_count, second.record_count) == (50, 60)
    assert second.parents == ["1.0"] and first.parents == []
    assert second.source_batches == ["b1", "b2"] and second.operation["new_batches"] == ["b2"] and second.metrics == {"pass_rate": 0.95}
    assert len(second.checksum) == 64 and second.checksum != first.checksum
    assert two_versions.describe("math").current_version == "1.1"
    major = two_versions.append("math", numbered(1, start=99), major=True)
    assert major.version == "2.0"
    records = list(two_versions.records("math", "1.1"))
    assert records == numbered(60)


def test_versions_are_immutable(two_versions: DatasetRegistry) -> None:
    with pytest.raises(VersionExistsError, match="'math' version 1.1 already exists"):
        two_versions.append("math", numbered(3, start=500), version="1.1")
    assert two_versions.version_info("math", "1.1").record_count == 60
    assert list(two_versions.records("math", "1.1")) == numbered(60)


def test_append_batch_files_from_the_queue(registry: DatasetRegistry, home) -> None:
    registry.create("math")
    paths = []
    for batch, start in (("batch_a", 0), ("batch_b", 5)):
        path = home.queue_dir("normal") / f"{batch}.jsonl"
        atomic_write_jsonl(path, numbered(5, start=start))
        paths.append(path)
    info = registry.append_batch_files("math", paths, description="first two batches")
    assert info.source_batches == ["batch_a", "batch_b"] and info.record_count == 10


def test_unchanged_data_is_not_copied(registry: DatasetRegistry) -> None:
    registry.create("big")
    base = [chat(f"What is {i} plus {i * 7}? Show the work step by step.", f"{i} + {i * 7} = {i * 8}", skill="add") for i in range(20_000)]
    registry.append("big", base)
    size_before = sum(p.stat().st_size for p in chunk_files(registry))
    extra = [chat(f"What is {i} times 3? Explain it carefully.", f"{i * 3}", skill="mul") for i in range(200)]
    registry.append("big", extra + base[:50])  # 50 records already stored are referenced, not stored again
    added = sum(p.stat().st_size for p in chunk_files(registry)) - size_before
    assert added / size_before <= 0.02, (added, size_before)
    assert registry.version_info("big").record_count == 20_250
    filtered = registry.derive("big", [FieldFilter({"metadata.skill": "mul"})])
    assert filtered.record_count == 200
    assert sum(p.stat().st_size for p in chunk_files(registry)) - size_before == added


def test_derive_with_modifications(registry: DatasetRegistry) -> None:
    registry.create("labels")
    records = [
        {**chat(f"q{i}", f"a{i}"), "metadata": {"label": "pos" if i % 2 else "neg", "confidence": 0.5}} for i in range(10)
    ]
    registry.append("labels", records)
    derived = registry.derive(
        "labels",
        [
            Filter(lambda r: r["messages"][0]["content"] != "q0", label="drop_q0"),
            RemapLabel("metadata.label", {"pos": "positive"}),
            AdjustConfidence("metadata.confidence", scale=2.0, offset=0.2),
        ],
        description="relabel",
    )
    out = list(registry.records("labels", derived.version))
    assert len(out) == 9
    assert {r["metadata"]["label"] for r in out} == {"positive", "neg"}
    assert all(r["metadata"]["confidence"] == 1.0 for r in out)  # 0.5 * 2 + 0.2, clipped at 1
    steps = derived.operation["steps"]
    assert [s["step"] for s in steps] == ["drop_q0", "remap_label", "adjust_confidence"]
    assert steps[0]["removed"] == 1 and steps[1]["changed"] == 5 and steps[2]["changed"] == 9
    assert records[0]["metadata"]["label"] == "neg"  # inputs are not mutated


class ReplaceWith:
    """A custom step: any object with ``apply(records) -> (records, report)`` works."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def apply(self, records: list[dict]) -> tuple[list[dict], dict]:
        return self.records, {"step": "replace", "input": len(records), "output": len(self.records)}


def test_diff_reports_added_removed_changed_and_metric_deltas(registry: DatasetRegistry) -> None:
    registry.create("d")
    old = [{**chat(f"q{i}", f"a{i}"), "id": i} for i in range(5)] + [chat("free prompt", "old answer")]
    registry.append("d", old, metrics={"pass_rate": 0.8, "note": "x"})
    new = [old[0], {**old[1], "messages": [old[1]["messages"][0], {"role": "assistant", "content": "fixed"}]}]
    new += old[3:5] + [chat("free prompt", "new answer"), {**chat("brand new", "a"), "id": 99}]
    registry.derive("d", [ReplaceWith(new)], metrics={"pass_rate": 0.9})
    diff = registry.diff("d", "1.0", "1.1")
    assert diff.unchanged == 3
    assert [r["id"] for r in diff.removed] == [2]
    assert [r.get("id") for r in diff.added] == [99]
    assert sorted(str(new_r["messages"][1]["content"]) for _, new_r in diff.changed) == ["fixed", "new answer"]
    assert diff.metric_deltas == pytest.approx({"pass_rate": 0.1})
    assert diff.summary()["changed"] == 2


def test_rollback_round_trip_keeps_history(two_versions: DatasetRegistry) -> None:
    v11 = list(two_versions.records("math"))
    assert two_versions.rollback("math", "1.0").current_version == "1.0"
    assert list(two_versions.records("math")) == numbered(50)
    assert [v.version for v in two_versions.versions("math")] == ["1.0", "1.1"]
    branched = two_versions.append("math", numbered(2, start=700))
    assert (branched.version, branched.parents) == ("1.2", ["1.0"])
    two_versions.rollback("math", "1.1")
    assert list(two_versions.records("math")) == v11


def test_delete_safeguards(two_versions: DatasetRegistry) -> None:
    with pytest.raises(DeletionRefusedError, match="current version"):
        two_versions.delete_version("math", "1.1")
    with pytest.raises(DeletionRefusedError, match="parent of 1.1"):
        two_versions.delete_version("math", "1.0")
    with pytest.raises(DeletionRefusedError, match="2 versions"):
        two_versions.delete_dataset("math")
    two_versions.delete_version("math", "1.0", force=True)
    assert list(two_versions.records("math", "1.1")) == numbered(60)  # a child does not depend on its parent's manifest
    assert two_versions.verify("math").ok
    two_versions.delete_dataset("math", force=True)
    assert two_versions.list_datasets() == [] and chunk_files(two_versions) == []


def test_flipped_byte_is_detected_and_never_served(two_versions: DatasetRegistry) -> None:
    assert two_versions.verify().ok
    victim = chunk_files(two_versions)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    report = two_versions.verify("math")
    assert not report.ok and victim.stem in report.problems[0] and "version 1." in report.problems[0]
    with pytest.raises(CorruptObjectError, match=f"dataset 'math' version 1.1: object {victim.stem} is corrupt"):
        list(two_versions.records("math", "1.1"))
    with pytest.raises(IntegrityError):
        two_versions.append("math", numbered(1, start=900))


def test_missing_object_is_reported(two_versions: DatasetRegistry) -> None:
    victim = chunk_files(two_versions)[-1]
    victim.unlink()
    with pytest.raises(MissingObjectError, match=victim.stem):
        two_versions.records("math", "1.1")
    assert not two_versions.verify().ok


def test_tampered_manifest_fails_the_version_checksum(two_versions: DatasetRegistry) -> None:
    import duckdb

    with duckdb.connect(str(two_versions.catalog_path)) as con:
        con.execute("UPDATE segments SET stop_row = stop_row - 1 WHERE version = '1.1' AND seq = 0")
    with pytest.raises(CorruptObjectError, match="version checksum"):
        two_versions.records("math", "1.1")


def test_enhancement_steps_report_counts(registry: DatasetRegistry) -> None:
    registry.create("raw")
    text = (
        "Tom has 3 apples and buys 4 more apples at the market today. His sister gives him 2 pears and "
        "his friend takes one apple away after lunch. Later he finds 5 oranges in a box. How many apples does Tom have now?"
    )
    records = [
        chat("  Caf\u0065\u0301   time\n\n\n\nnow  ", "ok", skill="a"),
        chat(text, "7", skill="a"),
        chat(text.upper(), "7", skill="a"),  # exact duplicate after normalization
        chat(text.replace("now?", "tonight?"), "7", skill="b"),  # near duplicate
        chat("Something else entirely about binary numbers and bits", "101", skill="b"),
        chat("A third unrelated question on prime numbers below twenty", "8", skill="b"),
        chat("Yet another distinct prompt, this one on geometry of circles", "pi", skill="b"),
    ]
    registry.append("raw", records)
    info = registry.derive(
        "raw", [CleanText(), DropExactDuplicates(), DropNearDuplicates(0.7), BalanceClasses("metadata.skill", seed=1)]
    )
    clean, exact, near, balance = info.operation["steps"]
    assert clean["changed"] == 1 and clean["output"] == 7
    assert exact["removed"] == 1 and near["removed"] == 1
    assert balance["classes_before"] == {"'a'": 2, "'b'": 3} and balance["output"] == 4
    out = list(registry.records("raw"))
    assert out[0]["messages"][0]["content"] == "Caf\u00e9 time\n\nnow"


def gsm8k_with_near_duplicates(count: int) -> list[dict]:
    items = json.loads(GSM8K.read_text())[:count]
    records = [chat(item["instruction"], item["output"], skill=f"s{i % 3}") for i, item in enumerate(items)]
    copies = []
    for i in range(0, 60, 3):
        original = records[i]
        prompt = original["messages"][0]["content"]
        copies.append(chat(prompt.replace(".", " .", 1) + " Please answer.", original["messages"][1]["content"], skill="s1"))
        copies.append(chat(prompt.upper(), original["messages"][1]["content"], skill="s2"))  # exact duplicate
    return records + copies


def test_splits_keep_duplicates_on_one_side(registry: DatasetRegistry) -> None:
    records = gsm8k_with_near_duplicates(1500)
    registry.create("gsm8k")
    registry.append("gsm8k", records)
    result = registry.split("gsm8k", ratios={"train": 0.8, "val": 0.1, "test": 0.1}, stratify_by="metadata.skill", seed=7)
    assert sum(len(v) for v in result.splits.values()) == len(records)
    assert result.grouped_records >= 60
    split_of_key: dict[bytes, str] = {}
    for name, members in result.splits.items():
        for record in members:
            assert split_of_key.setdefault(exact_key(conversation_text(record)), name) == name
    texts = [conversation_text(r) for r in records]
    keys = [str(i) for i in range(len(records))]
    matches = NearDuplicateIndex(0.8).find_within(keys, texts)
    assignment = result.assignment
    assert matches and all(assignment[int(m.key_a)] == assignment[int(m.key_b)] for m in matches)
    for skill in ("s0", "s1", "s2"):
        in_skill = [a for r, a in zip(records, assignment) if r["metadata"]["skill"] == skill]
        assert abs(in_skill.count("train") / len(in_skill) - 0.8) < 0.05
    again = registry.split("gsm8k", ratios={"train": 0.8, "val": 0.1, "test": 0.1}, stratify_by="metadata.skill", seed=7)
    assert again.assignment == assignment
    assert assign_splits(records, seed=8).assignment != assignment


def test_generated_records_round_trip(registry: DatasetRegistry) -> None:
    records = get_generator("binary").generate(1, 200, 3)
    registry.create("binary")
    registry.append("binary", records)
    assert list(registry.records("binary")) == records
    report = registry.verify()
    assert report.ok and report.records == 200 and report.objects == 1


def test_waits_while_another_process_holds_the_catalog(two_versions: DatasetRegistry) -> None:
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(1.5)",
         str(two_versions.catalog_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        start = time.monotonic()
        assert two_versions.describe("math").current_version == "1.1"
        assert time.monotonic() - start > 0.5  # it waited for the lock instead of failing
    finally:
        holder.wait(timeout=10)
