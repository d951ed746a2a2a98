"""`tdm datasets ...` end to end on a real registry: each command, with --json."""

import json

import pytest
from click.testing import CliRunner

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.cli import main
from tdm_dagster.generate.generators import get_generator


def tdm(*args, ok=True):
    result = CliRunner().invoke(main, ["datasets", *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def data(*args):
    return json.loads(tdm(*args, "--json").stdout)


@pytest.fixture
def batches(tmp_path):
    paths = tmp_path / "b1.jsonl", tmp_path / "b2.jsonl"
    atomic_write_jsonl(paths[0], get_generator("binary").generate(2, 40, 1))
    atomic_write_jsonl(paths[1], get_generator("syllo").generate(1, 10, 2))
    return paths


def test_lifecycle(home, tmp_path, batches):
    b1, b2 = batches
    assert data("create", "sft", "--tag", "demo", "--spec", "chat_sft_v1")["name"] == "sft"
    assert data("add", "sft", str(b1))["version"] == "1.0"
    v2 = data("add", "sft", str(b2), "--description", "syllo")
    assert (v2["version"], v2["record_count"]) == ("1.1", 50)
    assert [d["name"] for d in data("list")] == ["sft"]
    assert data("show", "sft")["current"]["version"] == "1.1"
    assert [v["version"] for v in data("versions", "sft")] == ["1.0", "1.1"]

    diff = data("diff", "sft", "1.0", "1.1")
    assert diff["added"] == 10 and diff["removed"] == 0

    derived = data("derive", "sft", "--where", "metadata.skill=binary", "--clean")
    assert derived["record_count"] == 40 and derived["operation"]["steps"][0]["removed"] == 10

    splits = data("split", "sft", "--ratios", "train=0.5,test=0.5", "--seed", "3", "--out", str(tmp_path / "splits"))
    assert sum(splits["counts"].values()) == 40
    assert (tmp_path / "splits" / "train.jsonl").exists()

    assert data("rollback", "sft", "1.0")["current_version"] == "1.0"
    assert data("verify")["ok"] is True

    refused = tdm("delete", "sft", "--version", "1.0", ok=False)
    assert refused.exit_code == 1 and "current" in refused.output
    assert "--force" in refused.output and "force=True" not in refused.output
    assert data("delete", "sft", "--version", "1.2")["deleted"] == "sft 1.2"
    whole = tdm("delete", "sft", ok=False)
    assert whole.exit_code == 1 and "add --force to delete it anyway" in whole.output


@pytest.mark.parametrize("suffix", ["jsonl", "json", "csv", "parquet", "hf"])
def test_export_import_round_trip(home, tmp_path, batches, suffix):
    b1, _ = batches
    tdm("create", "src")
    tdm("add", "src", str(b1))
    target = tmp_path / (f"out.{suffix}" if suffix != "hf" else "out_hf")
    assert data("export", "src", str(target), "--format", suffix)["records"] == 40
    imported = data("import", "copy", str(target), "--format", suffix)
    assert imported["record_count"] == 40
    assert imported["checksum"] == data("show", "src")["current"]["checksum"]


def test_pickle_import_needs_consent(home, tmp_path, batches):
    b1, _ = batches
    tdm("create", "src")
    tdm("add", "src", str(b1))
    tdm("export", "src", str(tmp_path / "out.pkl"))
    refused = tdm("import", "copy", str(tmp_path / "out.pkl"), ok=False)
    assert refused.exit_code == 2 and "pickle" in refused.output.lower()
    assert "--allow-pickle" in refused.output and "allow_pickle" not in refused.output
    assert data("import", "copy", str(tmp_path / "out.pkl"), "--allow-pickle")["record_count"] == 40


def test_errors_are_clear(home):
    missing = tdm("show", "nope", ok=False)
    assert missing.exit_code == 1 and "nope" in missing.output and "Traceback" not in missing.output
    tdm("create", "x")
    again = tdm("create", "x", ok=False)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = tdm("derive", "x", "--where", "no-equals-sign", ok=False)
    assert bad.exit_code == 2
    unknown = tdm("export", "x", "out.weird", ok=False)
    assert unknown.exit_code == 2 and "'--format'" in unknown.output and "pass fmt" not in unknown.output


def test_corruption_fails_verify(home, batches):
    b1, _ = batches
    tdm("create", "c")
    tdm("add", "c", str(b1))
    chunk = next((home.root / "datasets" / "objects").rglob("*.parquet"))
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    result = tdm("verify", "c", "--json", ok=False)
    assert result.exit_code == 1 and json.loads(result.stdout)["ok"] is False
    export = CliRunner().invoke(main, ["datasets", "export", "c", str(home.root / "x.jsonl")])
    assert export.exit_code == 1 and chunk.stem[:12] in export.output
