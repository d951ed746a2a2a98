"""The Python API (docs/python-api.md): what the seed documents show as ``DataManager``,
``QualityChecker`` and ``DatasetManager``, thin over the packages the CLI runs.

    from tdm_dagster.sdk import DataManager
    tdm = DataManager("/path/to/home")
    tdm.datasets.create("sft")
    tdm.datasets.add("sft", "chats.jsonl")          # through the gate, as `tdm datasets add`
    report = tdm.quality.validate("chats.jsonl")    # as `tdm validate --json`; nothing written
    splits = tdm.datasets.split("sft", ratios={"train": 0.8, "val": 0.2})
    tdm.datasets.export("sft", "sft.jsonl")
    tdm.datasets.push("sft")                        # to storage.remote

Each call reads the home's config as it is now (as each CLI command does), so a change
to ``config.yaml`` applies to the next call. Errors are the packages' own, with the
message the CLI prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tdm_dagster.config.settings import TdmConfig, load_config
from tdm_dagster.datasets.intake import Added, choose_format, import_file
from tdm_dagster.datasets.registry import DatasetRegistry
from tdm_dagster.datasets.splits import DEFAULT_RATIOS, SplitResult
from tdm_dagster.home import TdmHome

__all__ = ["DataManager", "DatasetManager", "QualityChecker"]

PathLike = str | os.PathLike[str]


def _home(home: TdmHome | PathLike | None) -> TdmHome:
    return (TdmHome.from_env() if home is None else TdmHome.of(home)).ensure()


class QualityChecker:
    """The gate on a file, as ``tdm validate``: a report, nothing written."""

    def __init__(self, home: TdmHome | PathLike | None = None) -> None:
        self.home = _home(home)

    def validate(self, path: PathLike, *, level: str | None = None, spec: str | None = None, answers: PathLike | None = None) -> dict[str, Any]:
        """The report ``tdm validate --json`` prints: ``overall_pass``, ``totals``,
        ``tiers``, ``issues`` (each with its line), ``checks``."""
        from tdm_dagster.gate.validate_file import validate_file

        return validate_file(path, load_config(self.home), spec=spec, level=level, home=self.home, answers=answers)


class DatasetManager:
    """Versioned datasets, as ``tdm datasets``: create, add, split, export, push."""

    def __init__(self, home: TdmHome | PathLike | None = None) -> None:
        self.home = _home(home)
        self.registry = DatasetRegistry(self.home)

    def config(self) -> TdmConfig:
        return load_config(self.home)

    def create(self, name: str, *, description: str = "", tags: Iterable[str] = (), exist_ok: bool = False) -> Any:
        """A new, empty dataset (its ``DatasetInfo``)."""
        return self.registry.create(name, description=description, tags=list(tags), exist_ok=exist_ok)

    def add(self, name: str, path: PathLike, *, fmt: str | None = None, gate: bool = True, level: str | None = None, description: str = "") -> Added:
        """A file's records as a new version, through the gate unless ``gate=False``
        (``tdm datasets import``): ``.version``, ``.rejected``, ``.lines`` (the notes).
        A pickle is refused here, as over the API: import one you trust with the CLI."""
        return import_file(self.registry, self.home, self.config(), name, path, choose_format(path, fmt, export=False),
                           gate=gate, level=level, description=description)  # fmt: skip

    def records(self, name: str, version: str | None = None) -> list[dict[str, Any]]:
        """The records of a version (the current one by default)."""
        return list(self.registry.records(name, version))

    def versions(self, name: str) -> list[str]:
        return [info.version for info in self.registry.versions(name)]

    def split(self, name: str, version: str | None = None, *, ratios: Mapping[str, float] = DEFAULT_RATIOS,
              stratify_by: str | None = None, seed: int = 0) -> SplitResult:  # fmt: skip
        """Deterministic splits (``.splits``: name -> records); duplicates never cross splits."""
        return self.registry.split(name, version, ratios=ratios, stratify_by=stratify_by, seed=seed)

    def export(self, name: str, path: PathLike, *, version: str | None = None, fmt: str | None = None) -> int:
        """Write a version to ``path`` (format from ``fmt`` or the extension); the count."""
        from tdm_dagster.formats import export_records

        return export_records(self.registry.records(name, version), path, choose_format(path, fmt, export=True))

    def push(self, name: str, *, version: str | None = None, remote: str | None = None) -> Any:
        """Send a version to ``remote`` (default ``storage.remote``); the ``Transfer``."""
        from tdm_dagster.datasets.sync import push
        from tdm_dagster.storage.remote import Remote, RemoteError

        storage = self.config().storage
        url = remote or storage.remote
        if not url:
            raise RemoteError("no remote: pass remote='s3://bucket/prefix' (or gs://...) or set storage.remote in config.yaml")
        return push(self.registry, Remote(url, endpoint_url=storage.endpoint_url), name, version)


class DataManager:
    """One home: its ``datasets`` (:class:`DatasetManager`) and ``quality``
    (:class:`QualityChecker`)."""

    def __init__(self, home: TdmHome | PathLike | None = None) -> None:
        self.home = _home(home)
        self.datasets = DatasetManager(self.home)
        self.quality = QualityChecker(self.home)
