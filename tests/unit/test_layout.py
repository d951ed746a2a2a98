"""The package stays navigable: no module grows past ~400 lines, and every path under
``$TDM_HOME`` is named in ``home.py`` (other modules ask a ``TdmHome`` for it)."""

import re
from pathlib import Path

import tdm_dagster
import tdm_dagster.home as home_module
from tdm_dagster.home import STATE_FILES, TdmHome

PACKAGE = Path(tdm_dagster.__file__).resolve().parent
MAX_MODULE_LINES = 400
PATH_BY_HAND = re.compile(r"""\b(?:home|TdmHome\.\w+\([^)]*\))\.(?:root|state_dir|queue_root)\s*/\s*["A-Z]""")
"""``home.root / "inbox"``, ``home.state_dir / "x.json"``, ``home.queue_root / CONST``..."""


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_the_size_limit():
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines()) for path in _modules()}
    assert len(sizes) > 80
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def test_no_module_but_home_builds_a_path_under_the_home_root():
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in _modules()
        if path.name != "home.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PATH_BY_HAND.search(line)
    ]
    assert found == []


def test_the_scan_would_see_a_path_built_by_hand():
    assert PATH_BY_HAND.search('target = home.root / "inbox" / name')
    assert PATH_BY_HAND.search("return TdmHome.of(home).queue_root / CLAIMED_DIR")
    assert not PATH_BY_HAND.search("target = home.inbox_dir / name")


def test_home_docstring_names_every_folder_and_state_file(tmp_path):
    home = TdmHome(tmp_path)
    doc = home_module.__doc__
    folders = [home.inbox_dir, home.archive_dir, home.failed_dir, home.batches_dir, home.reports_dir, home.rejected_dir,
               home.queue_root, home.training_dir, home.serving_dir, home.datasets_dir, home.exports_dir, home.state_dir,
               home.held_dir("high").parent, home.claims_dir, home.rechecking_dir("low").parent]  # fmt: skip
    for folder in folders:
        assert f"{folder.relative_to(tmp_path).as_posix()}/" in doc, folder
    assert all(home.state_file(name).parent == home.state_dir for name in STATE_FILES)
