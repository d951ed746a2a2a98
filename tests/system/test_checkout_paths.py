"""Tests and benchmarks read nothing beside the checkout, so a clone with nothing next to it
passes: a scan of their sources, the runtime guard of ``tests/support/checkout_guard.py`` shown
failing in a separate pytest run, and the shipped public data checked to be complete."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from tests.support.checkout_guard import SYSTEM_FOLDERS, CheckoutGuard
from tests.support.fixture_data import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench")
ESCAPES = {
    "a machine's absolute path": re.compile(r"/work/"),
    "the shared data folder": re.compile(r"""shared["']?\s*[/,]\s*["']?data|\.\./shared|["']shared["']"""),
    "a checkout root's parent": re.compile(r"\b(?:\w*ROOT|REPO)\s*\.\s*parent\b"),
}


def code_without_prose(source: str) -> str:
    """``source`` without comments and docstrings (prose may name ../shared/data; code may not)."""
    prose_lines = {
        line
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for line in range(node.lineno, node.end_lineno + 1)
    }
    kept = [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type != tokenize.COMMENT and not (token.type == tokenize.STRING and token.start[0] in prose_lines)
    ]
    return " ".join(kept)


def escapes_in(source: str, depth: int) -> list[str]:
    """What the code of ``source``, a file ``depth`` folders below the checkout, reaches above it with."""
    code = code_without_prose(source)
    found = [f"{what}: {match.group(0)!r}" for what, pattern in ESCAPES.items() for match in pattern.finditer(code)]
    found += [f"parents[{m.group(1)}] of a file {depth} deep" for m in re.finditer(r"parents\s*\[\s*(\d+)\s*\]", code)
              if int(m.group(1)) > depth]  # fmt: skip
    found += [f"{m.group(0)} of a file {depth} deep" for m in re.finditer(r"(?:\.\s*parent\b\s*)+", code)
              if m.group(0).count("parent") > depth + 1]  # fmt: skip
    return found


def scanned_files() -> list[Path]:
    return sorted(path for folder in SCANNED for path in (ROOT / folder).rglob("*.py") if path != Path(__file__).resolve())


def test_no_test_or_benchmark_names_a_path_beside_the_checkout() -> None:
    files = scanned_files()
    assert len(files) > 40
    found = {}
    for path in files:
        relative = path.relative_to(ROOT)
        if escapes := escapes_in(path.read_text(encoding="utf-8"), depth=len(relative.parts) - 1):
            found[str(relative)] = escapes
    assert found == {}


@pytest.mark.parametrize(
    "line",
    [
        'DATA = Path("/work/shared/data/gsm8k_train.alpaca.json")',
        'DATA = Path(__file__).resolve().parents[2] / "shared" / "data"',
        'DATA = REPO_ROOT.parent / "elsewhere"',
        "DATA = Path(__file__).resolve().parent.parent.parent",
        'DATA = open("../shared/data/x.json")',
    ],
)
def test_the_scan_finds_each_kind_of_escape_in_code_but_not_in_prose(line: str) -> None:
    prose = '"""Docstrings may say ../shared/data."""\n# and comments /work/shared/data\n'
    assert escapes_in(f"{prose}{line}\n", depth=1)
    assert escapes_in(f"{prose}DATA = Path(__file__).resolve().parents[1] / 'tests' / 'data'\n", depth=1) == []
    assert escapes_in("HERE = Path(__file__).resolve().parent.parent.parent\n", depth=2) == []


def test_no_link_in_tests_or_bench_leaves_the_checkout() -> None:
    links = [path for folder in SCANNED for path in (ROOT / folder).rglob("*") if path.is_symlink()]
    assert [link for link in links if not link.resolve().is_relative_to(ROOT)] == []


def test_guard_exempts_only_folders_beside_the_checkout_it_was_told_about() -> None:
    guard = CheckoutGuard(Path("/srv/x/repo"), ["/srv", "/srv/x/venv", "/srv/x/repo/.venv", "/usr/lib/python3"])
    assert guard.exempt == ("/srv/x/venv",)  # /srv holds the checkout's parent: exempting it would exempt all
    beside = ["/srv/x/shared/data/gsm8k.json", "/srv/x/repo2/tests/data/a.json", "/srv/x/venvx/a.py"]
    not_beside = ["/srv/x/repo/tests/data/a.json", "/srv/x/repo", "/srv/x/venv/lib/a.py", "/srv/x/.cache/a", "/srv/y/a", "/etc/passwd"]
    assert [path for path in beside if guard.beside(path)] == beside
    assert [path for path in not_beside if guard.beside(path)] == []


def test_guard_for_a_checkout_at_the_root_flags_only_what_is_not_a_system_folder() -> None:
    guard = CheckoutGuard(Path("/app"), SYSTEM_FOLDERS)
    assert [path for path in ("/shared/data/a.json", "/app2/x") if guard.beside(path)] == ["/shared/data/a.json", "/app2/x"]
    assert [path for path in ("/etc/passwd", "/proc/self/status", "/dev/null", "/tmp/a", "/app/x") if guard.beside(path)] == []


def test_guard_reads_the_paths_of_each_watched_event() -> None:
    guard = CheckoutGuard(Path("/srv/x/repo"), [])
    guard.audit("open", ("/srv/x/shared/a.json", "r", 0))
    guard.audit("os.listdir", (b"/srv/x/shared",))
    guard.audit("os.scandir", (Path("/srv/x/data"),))
    guard.audit("subprocess.Popen", ("/usr/bin/tdm", ["tdm", "validate", "/srv/x/shared/b.json"], "/srv/x/other", None))
    guard.audit("subprocess.Popen", ("/usr/bin/sh", "/srv/x/run.sh", None, None))
    guard.audit("open", ("/srv/x/shared/a.json", "r", 0))  # reported once
    guard.audit("open", ("child", None, 0))  # os.open of a bare name, e.g. relative to shutil.rmtree's dir_fd
    guard.audit("open", (3, "r", 0))  # a file descriptor
    guard.audit("import", ("/srv/x/shared/a.py",))  # not watched
    assert guard.take() == [
        "open /srv/x/shared/a.json",
        "os.listdir /srv/x/shared",
        "os.scandir /srv/x/data",
        "subprocess.Popen /srv/x/other",
        "subprocess.Popen /srv/x/shared/b.json",
        "subprocess.Popen /srv/x/run.sh",
    ]
    assert guard.take() == []


def test_guard_fails_each_test_that_reads_beside_the_checkout(tmp_path: Path) -> None:
    """A separate pytest run, with the guard as its only plugin, on a tiny checkout whose
    tests read a file beside it in each way the guard watches."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (repo / "inside.txt").write_text("in")
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "test_reads.py").write_text(
        "import os, subprocess, sys\n"
        "from pathlib import Path\n"
        "import pytest\n"
        "HERE = Path(__file__).resolve().parent\n"
        "SECRET = HERE.parent / 'outside' / 'secret.txt'\n"
        "@pytest.fixture\n"
        "def secret():\n"
        "    return SECRET.read_text()\n"
        "def test_inside_temp_and_a_process_given_inside_paths(tmp_path):\n"
        "    assert (HERE / 'inside.txt').read_text() == 'in'\n"
        "    (tmp_path / 'a.txt').write_text('a')\n"
        "    assert (tmp_path / 'a.txt').read_text() == 'a'\n"
        "    subprocess.run([sys.executable, '-c', 'pass', str(HERE / 'inside.txt')], check=True)\n"
        "def test_relative_open():\n"
        "    assert open('../outside/secret.txt').read() == 'secret'\n"
        "def test_listing():\n"
        "    assert os.listdir(SECRET.parent) == ['secret.txt']\n"
        "def test_process_argument():\n"
        "    subprocess.run([sys.executable, '-c', 'pass', str(SECRET)], check=True)\n"
        "def test_fixture(secret):\n"
        "    assert secret == 'secret'\n"
    )
    (repo / "test_at_import.py").write_text(
        "from pathlib import Path\n"
        "SECRET = (Path(__file__).resolve().parent.parent / 'outside' / 'secret.txt').read_text()\n"
        "def test_never_runs():\n"
        "    pass\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "tests.support.checkout_guard", "-p", "no:cacheprovider",
               "--continue-on-collection-errors",
               f"--basetemp={tmp_path / 'basetemp'}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}  # summary lines not cut
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "3 failed, 1 passed, 2 errors" in out, out
    secret = outside / "secret.txt"
    for outcome, test, line in [
        ("FAILED", "test_reads.py::test_relative_open", f"open {secret}"),
        ("FAILED", "test_reads.py::test_listing", f"os.listdir {outside}"),
        ("FAILED", "test_reads.py::test_process_argument", f"subprocess.Popen {secret}"),
        ("ERROR", "test_reads.py::test_fixture", f"open {secret}"),  # in its setup
        ("ERROR", "test_at_import.py", f"open {secret}"),  # while collecting: its test never runs
    ]:
        assert f"{outcome} {test} - touched paths outside the checkout" in out, (test, out)
        section = out.split(f" {test.split('::')[-1]} _")[1]
        assert line in section.split("\n___")[0], (test, line, out)
    assert f"touched paths outside the checkout {repo} " in out


def test_shipped_public_data_is_complete_and_licensed() -> None:
    """The subsets the tests read, with the record counts tests/data/README.md gives."""
    assert len(json.loads(FIXTURES.gsm8k.read_bytes())) == 1500
    assert len(json.loads(FIXTURES.roleplay.read_bytes())) == 1000
    assert len(FIXTURES.seed_tasks.read_bytes().splitlines()) == 175
    folder = FIXTURES.folder
    for path in FIXTURES.files:
        licence = (folder / f"{path.name.split('.')[0]}.LICENSE").read_text()
        assert path.name in licence
    assert "CC BY-NC 4.0" in (folder / "alpaca_seed_tasks.LICENSE").read_text()
    readme = (folder / "README.md").read_text()
    assert "python tests/data/make_subsets.py" in readme
    assert all(f"`{path.name}`" in readme for path in FIXTURES.files)


@pytest.mark.parametrize("script", ["bench_near_dup.py", "bench_ingest.py", "bench_gate_levels.py", "bench_inbox_memory.py"])
def test_benchmarks_default_to_the_shipped_data_and_refuse_a_folder_without_it(script: str, tmp_path: Path) -> None:
    help_text = subprocess.run([sys.executable, f"bench/{script}", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "--data DIR" in help_text and "tests/data" in help_text
    refused = subprocess.run([sys.executable, f"bench/{script}", "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2
    assert f"{tmp_path} has no gsm8k_train.alpaca.json, gpteacher_roleplay.alpaca.json, alpaca_seed_tasks.jsonl" in refused.stderr
