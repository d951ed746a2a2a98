"""Hostile dataset names and version strings at every entry point: refused clearly, nothing written.

Each bad name and each bad version goes through every ``tdm datasets`` command that takes
one, the registry API, the scheduled export and the ``training_dataset`` asset's config.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.cli import main
from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.datasets.errors import InvalidNameError, InvalidVersionError
from tdm_dagster.datasets.names import check_name, check_version

BAD_NAMES = [
    "", ".", "..", "../../x", "../escape", "a/b", "/etc/passwd", "-rf", ".hidden", "a..b", "x" * 65,
    "d\u0430ta",  # Cyrillic a
    "\uff44\uff41\uff54\uff41",  # fullwidth "data"
    "data\u200b",  # zero-width space
    "caf\u00e9", "a b", "a\nb", "a\x00b", "a\\b", "~root", "*", "name;rm -rf", "C:x", "data\n",
]  # fmt: skip
BAD_VERSIONS = [
    "", "1", "1.", ".1", "1.2.3", "v1.2", "01.2", "1.02", "-1.0", "1.-1", "\u0661.\u0662", "1.2\n", " 1.2",
    "1e3.0", "9999999999.0", "a.b", "1,2", "../1.0",
]  # fmt: skip
GOOD_NAMES = ["a", "training", "sft-v2", "my_data.2025", "A9", "x" * 64, "a.b-c_d"]
GOOD_VERSIONS = ["0.0", "1.0", "1.2", "10.11", "999999999.0"]


def test_the_rules() -> None:
    for name in GOOD_NAMES:
        assert check_name(name) == name
    for version in GOOD_VERSIONS:
        assert check_version(version) == version
    for name in BAD_NAMES:
        with pytest.raises(InvalidNameError, match="dataset name"):
            check_name(name)
    for version in BAD_VERSIONS:
        with pytest.raises(InvalidVersionError, match=r"expected MAJOR\.MINOR such as 1\.2"):
            check_version(version)


def snapshot(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` with its size (folders: -1)."""
    found = {}
    for folder, dirnames, filenames in os.walk(root):
        for entry in dirnames:
            found[os.path.join(folder, entry)] = -1
        for entry in filenames:
            path = os.path.join(folder, entry)
            found[path] = os.lstat(path).st_size
    return found


@pytest.fixture
def sandbox(home, tmp_path, monkeypatch):
    """A dataset ``good`` (versions 1.0 and 1.1), a batch file, and a working folder as the cwd."""
    registry = DatasetRegistry(home)
    registry.create("good")
    records = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(4)]
    registry.append("good", records[:2])
    registry.append("good", records[2:])
    batch = tmp_path / "batch.jsonl"
    atomic_write_jsonl(batch, records)
    work = tmp_path / "work" / "deep" / "er"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return {"registry": registry, "batch": str(batch), "out": str(tmp_path / "out"), "home": home}


def name_commands(name: str, sandbox: dict) -> list[list[str]]:
    """Each command that takes a name; options first, then ``--`` so that a name like ``-rf`` stays an argument."""
    batch, out = sandbox["batch"], sandbox["out"]
    return [
        ["create", "--", name], ["show", "--", name], ["add", "--", name, batch], ["versions", "--", name],
        ["diff", "--", name, "1.0", "1.1"], ["rollback", "--", name, "1.0"], ["derive", "--clean", "--", name],
        ["split", "--out", out, "--", name], ["export", "--", name, f"{out}/x.jsonl"], ["import", "--", name, batch],
        ["delete", "--force", "--", name], ["verify", "--", name],
    ]  # fmt: skip


def version_commands(version: str, sandbox: dict) -> list[tuple[list[str], str]]:
    """Each command that takes a version, with the argument or flag its error must name."""
    out = sandbox["out"]
    return [
        (["diff", "--", "good", version, "1.1"], "'OLD'"), (["diff", "--", "good", "1.0", version], "'NEW'"),
        (["rollback", "--", "good", version], "'VERSION'"), (["derive", "good", "--from", version, "--clean"], "'--from'"),
        (["split", "good", "--version", version, "--out", out], "'--version'"),
        (["export", "good", f"{out}/x.jsonl", "--version", version], "'--version'"),
        (["delete", "good", "--version", version, "--force"], "'--version'"), (["verify", "good", "--version", version], "'--version'"),
    ]  # fmt: skip


def test_cli_refuses_bad_names_and_versions_with_exit_2_and_writes_nothing(sandbox, tmp_path) -> None:
    before = snapshot(tmp_path)
    registry = sandbox["registry"]
    checksum = registry.version_info("good").checksum
    tried = 0
    for name in BAD_NAMES:
        for args in name_commands(name, sandbox):
            result = CliRunner().invoke(main, ["datasets", *args])
            assert result.exit_code == 2, (args, result.output)
            assert ("Invalid value for 'NAME'" in result.output or "Invalid value for '[NAME]'" in result.output) and "ASCII letters" in result.output, (args, result.output)
            assert "Traceback" not in result.output
            tried += 1
    for version in BAD_VERSIONS:
        for args, flag in version_commands(version, sandbox):
            result = CliRunner().invoke(main, ["datasets", *args])
            assert result.exit_code == 2, (args, result.output)
            assert f"Invalid value for {flag}" in result.output and "expected MAJOR.MINOR such as 1.2" in result.output, (args, result.output)
            tried += 1
    assert tried == len(BAD_NAMES) * 12 + len(BAD_VERSIONS) * 8
    assert snapshot(tmp_path) == before  # nothing written anywhere, inside TDM_HOME or out of it
    assert [d.name for d in registry.list_datasets()] == ["good"]
    assert registry.describe("good").current_version == "1.1" and registry.version_info("good").checksum == checksum


def test_empty_version_never_deletes_or_rolls_back(sandbox) -> None:
    registry = sandbox["registry"]
    assert CliRunner().invoke(main, ["datasets", "delete", "good", "--version", "", "--force"]).exit_code == 2
    assert CliRunner().invoke(main, ["datasets", "rollback", "good", ""]).exit_code == 2
    assert registry.describe("good").current_version == "1.1"
    with pytest.raises(InvalidVersionError):
        registry.rollback("good", "")
    with pytest.raises(InvalidVersionError):
        registry.delete_version("good", "", force=True)
    with pytest.raises(InvalidVersionError):
        registry.records("good", "")
    assert [v.version for v in registry.versions("good")] == ["1.0", "1.1"]
    assert registry.describe("good").current_version == "1.1"


def test_registry_api_refuses_bad_names_and_versions(sandbox, tmp_path) -> None:
    from tdm_dagster.datasets import CleanText

    registry: DatasetRegistry = sandbox["registry"]
    before = snapshot(tmp_path)
    calls = {
        "create": lambda n: registry.create(n),
        "describe": lambda n: registry.describe(n),
        "versions": lambda n: registry.versions(n),
        "version_info": lambda n: registry.version_info(n),
        "append": lambda n: registry.append(n, []),
        "append_batch_files": lambda n: registry.append_batch_files(n, [sandbox["batch"]]),
        "derive": lambda n: registry.derive(n, [CleanText()]),
        "records": lambda n: registry.records(n),
        "diff": lambda n: registry.diff(n, "1.0", "1.1"),
        "split": lambda n: registry.split(n),
        "verify": lambda n: registry.verify(n),
        "rollback": lambda n: registry.rollback(n, "1.0"),
        "delete_version": lambda n: registry.delete_version(n, "1.0", force=True),
        "delete_dataset": lambda n: registry.delete_dataset(n, force=True),
    }
    for name in BAD_NAMES:
        for call in calls.values():
            with pytest.raises(InvalidNameError):
                call(name)
    version_calls = [
        lambda v: registry.version_info("good", v), lambda v: registry.records("good", v), lambda v: registry.diff("good", v, "1.1"),
        lambda v: registry.split("good", v), lambda v: registry.verify("good", v), lambda v: registry.rollback("good", v),
        lambda v: registry.delete_version("good", v, force=True), lambda v: registry.append("good", [], version=v),
        lambda v: registry.append("good", [], parent=v), lambda v: registry.derive("good", [CleanText()], parent=v),
        lambda v: registry.derive("good", [CleanText()], version=v),
    ]  # fmt: skip
    for version in BAD_VERSIONS:
        for call in version_calls:
            with pytest.raises(InvalidVersionError):
                call(version)
    assert snapshot(tmp_path) == before


def test_scheduled_export_cannot_be_steered_out_of_tdm_home(sandbox, tmp_path) -> None:
    from tdm_dagster.datasets.maintenance import export_current

    before = snapshot(tmp_path)
    for name in BAD_NAMES:
        with pytest.raises(InvalidNameError):
            export_current(sandbox["home"], name)
    assert snapshot(tmp_path) == before
    done = export_current(sandbox["home"], "good")
    assert Path(done["folder"]).parent == sandbox["home"].root / "exports"


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "d\u0430ta"])
def test_asset_config_with_a_bad_dataset_name_fails_clearly(sandbox, tmp_path, name) -> None:
    from tdm_dagster.assets import training_dataset
    from tdm_dagster.resources import TdmHomeResource

    home = sandbox["home"]
    home.config_path.write_text(f"dataset:\n  name: {name!r}\n".replace("'", '"'), encoding="utf-8")
    before = snapshot(tmp_path)
    with dg.instance_for_test() as instance:
        result = dg.materialize([training_dataset], instance=instance, resources={"tdm": TdmHomeResource()}, raise_on_error=False)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "dataset.name in config.yaml" in message and "ASCII letters" in message
    assert snapshot(tmp_path) == before


def test_export_replaces_a_symlink_at_the_target_instead_of_writing_through_it(sandbox, tmp_path) -> None:
    """``tdm datasets export`` writes where the user says; a link already at that path is replaced, not followed."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    result = CliRunner().invoke(main, ["datasets", "export", "good", str(link)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert not link.is_symlink() and len(link.read_text().splitlines()) == 4


def test_scheduled_export_refuses_a_symlinked_version_folder(sandbox, tmp_path) -> None:
    from tdm_dagster.datasets.maintenance import export_current

    outside = tmp_path / "outside"
    outside.mkdir()
    exports = sandbox["home"].root / "exports"
    exports.mkdir()
    (exports / "good-1.1").symlink_to(outside)
    with pytest.raises(ValueError, match="symlink"):
        export_current(sandbox["home"], "good")
    assert list(outside.iterdir()) == []
