"""What a dataset name and a version string may be.

A dataset name becomes part of file paths (its lock file, ``$TDM_HOME/exports/<name>-<version>/``),
so it is a plain ASCII word: no separators, no ``..``, no leading dot or dash, no Unicode
lookalikes, at most 64 characters. A version is ``MAJOR.MINOR`` in plain digits without
leading zeros, so each version has exactly one spelling (``1.2``, never ``01.2`` or ``1.02``).
Every entry point (registry, CLI, asset config, export) checks with these functions.
"""

from __future__ import annotations

import re

from tdm_dagster.datasets.errors import InvalidNameError, InvalidVersionError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")  # 9 digits: fits the catalog's INTEGER
NAME_RULE = "1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'"
VERSION_RULE = "expected MAJOR.MINOR such as 1.2"


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a dataset name (None when it is one)."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None or ".." in name:
        return NAME_RULE
    return None


def version_problem(version: object) -> str | None:
    """Why ``version`` is not a ``MAJOR.MINOR`` version string (None when it is one)."""
    if not isinstance(version, str) or _VERSION.fullmatch(version) is None:
        return VERSION_RULE
    return None


def check_name(name: str, label: str = "dataset name") -> str:
    """``name`` when it is a valid dataset name; else ``InvalidNameError`` naming ``label``."""
    problem = name_problem(name)
    if problem:
        raise InvalidNameError(f"{label} {shown(name)}: {problem}")
    return name


def check_version(version: str, label: str = "version") -> str:
    """``version`` when it is ``MAJOR.MINOR``; else ``InvalidVersionError`` naming ``label``."""
    problem = version_problem(version)
    if problem:
        raise InvalidVersionError(f"{label} {shown(version)}: {problem}")
    return version


def parse_version(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a valid version string."""
    major, minor = check_version(version).split(".")
    return int(major), int(minor)


def shown(value: object) -> str:
    """``repr`` cut to a readable length: an error never echoes a huge input back."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
