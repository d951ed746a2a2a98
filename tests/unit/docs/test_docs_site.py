"""The docs site builds with ``mkdocs build --strict`` (a broken link or anchor, a page not
in the nav, a nav entry without its page: each a warning, and strict makes it fail), the
generated issue-codes page is the table's, and the README's links reach the pages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tdm_dagster.records.issue_codes_page import issue_codes_page

ROOT = Path(__file__).resolve().parents[3]


def test_the_site_builds_strict_without_a_warning(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "reference" / "issue-codes" / "index.html").is_file()
    assert (tmp_path / "site" / "python-api" / "index.html").is_file()


def test_nothing_at_build_needs_the_network():
    """Material fetches Google fonts unless told not to; no plugin may call out."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["theme"]["font"] is False
    assert config["plugins"] == ["search"]  # search indexes locally; social cards would fetch fonts


def test_the_issue_codes_page_is_generated_from_the_table():
    page = (ROOT / "docs" / "reference" / "issue-codes.md").read_text(encoding="utf-8")
    assert page == issue_codes_page(), "regenerate: python -m tdm_dagster.records.issue_codes_page > docs/reference/issue-codes.md"


def test_the_readme_links_reach_existing_pages():
    links = re.findall(r"\]\(((?!https?:)[^)#]+)", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(links) >= 10
    assert [link for link in links if not (ROOT / link).is_file()] == []
