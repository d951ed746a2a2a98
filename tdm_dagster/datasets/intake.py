"""Records from a file into a dataset, as ``tdm datasets add``/``import`` and the REST API do it.

One path for both front ends, so a file imported over HTTP lands exactly as one imported
on the command line: its format chosen the same way, a pickle refused the same way, the
gate run the same way, and every record either appended or kept in ``rejected/`` with its
place, reasons and bytes. Messages are the front ends' to show; they do not name flags.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.datasets.errors import DatasetError
from tdm_dagster.home import TdmHome

if TYPE_CHECKING:
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.datasets.catalog import VersionInfo
    from tdm_dagster.datasets.registry import DatasetRegistry
    from tdm_dagster.formats.imported import ImportResult


class NothingAddedError(DatasetError):
    """No record could be read, or none passed the gate: no version is made.
    ``lines`` say what was rejected and where the rejected records are kept."""

    def __init__(self, message: str, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join([message, *lines]))


class PickleRefusedError(DatasetError, ValueError):
    """Importing a pickle without saying the file is trusted."""


@dataclass
class Added:
    """A version appended from read records, and what was left out."""

    version: VersionInfo
    rejected: int = 0
    rejected_file: Path | None = None
    gate: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)
    """Human-readable notes: the gate's verdict, rejected records, records already present."""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.version), "rejected": self.rejected,
                "rejected_file": str(self.rejected_file) if self.rejected_file else None, "gate": self.gate}  # fmt: skip


def choose_format(path: str | Path, fmt: str | None, *, export: bool) -> str:
    """``fmt``, else what ``path``'s name says (export: a folder or a name without an
    extension is ``hf``); ``ValueError`` when the name says nothing."""
    from tdm_dagster.formats import EXPORT_FORMATS, FormatError, infer_format

    if fmt:
        return fmt
    if export and (Path(path).is_dir() or not Path(path).suffix):
        return "hf"
    try:
        return infer_format(path)
    except FormatError as error:
        raise ValueError(f"none given and {error.problem.partition(';')[0]}; pass one of {', '.join(EXPORT_FORMATS)}") from error


def pickle_refusal(path: str | Path, how_to_allow: str) -> str:
    return (
        f"refusing to unpickle {path}: loading a pickle runs code from the file, so a tampered one can take over "
        f"this machine. Import a data format (jsonl, json, csv, parquet, hf) instead, or add {how_to_allow} "
        "only for a file you created yourself or otherwise trust"
    )


def gate_line(gate: dict[str, Any]) -> str:
    """The gate's verdict on an import in one line: counts, and why the batch failed and
    whether its passing records were salvaged."""
    line = f"gate ({gate['level']}): {gate['approved_records']} approved, {gate['rejected_records']} rejected"
    if gate["batch_approved"]:
        return line
    if gate["salvaged_records"]:
        return f"{line}; the batch failed ({gate['batch_failure']}), its {gate['salvaged_records']} passing records were salvaged"
    return f"{line}; batch rejected: {gate['batch_failure']} (on batch failure: {gate['on_batch_failure']})"


def append_read(registry: DatasetRegistry, home: TdmHome, name: str, read: ImportResult, gate: dict[str, Any] | None = None, **options: Any) -> Added:
    """Append the records read (and approved by the ``gate``, when it ran) as a new version;
    the others go to ``rejected/`` with their place, reasons and bytes."""
    from tdm_dagster.files.atomic import atomic_write_jsonl

    kept, lines = None, []
    if read.rejected:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S_%f")
        kept = home.rejected_file(f"dataset_{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}_{stamp}")
        atomic_write_jsonl(kept, read.rejected_rows())
        lines = [f"rejected {len(read.rejected)} of {read.input_records} records (reasons and bytes in {kept}):",
                 *(f"  {source.issue.message}" for source in read.rejected[:5])]  # fmt: skip
    if gate is not None:
        lines.insert(0, gate_line(gate))
    if not read.records:
        nothing = "no record passed the gate" if gate and gate["rejected_records"] else "no record could be read"
        raise NothingAddedError(f"{nothing}: nothing added", lines)
    version = registry.append(name, read.records, **options)
    present = version.operation.get("already_present", 0)
    if present:
        lines.append(f"{present} record(s) already in {name} were left out")
    return Added(version, len(read.rejected), kept, gate, lines)


def import_file(
    registry: DatasetRegistry,
    home: TdmHome,
    config: TdmConfig,
    name: str,
    path: str | Path,
    fmt: str,
    *,
    allow_pickle: bool = False,
    gate: bool = True,
    level: str | None = None,
    salvage: bool | None = None,
    description: str = "",
    pickle_flag: str = "allow_pickle",
) -> Added:
    """Append the records of ``path`` (in ``fmt``) to ``name``, creating it if needed,
    through the gate unless ``gate=False``; ``salvage`` overrides
    ``gate.on_batch_failure.import`` (None: as configured). A pickle is refused unless ``allow_pickle``
    (the refusal names ``pickle_flag``, the front end's way to allow it)."""
    from tdm_dagster.datasets.additions import file_entry
    from tdm_dagster.formats import import_records

    if fmt == "pickle" and not allow_pickle:
        raise PickleRefusedError(pickle_refusal(path, pickle_flag))
    read = import_records(path, fmt, allow_pickle=allow_pickle)
    files = [file_entry(path, read.input_records)] if Path(path).is_file() else None  # a folder (hf) has no one checksum
    verdict = None
    if gate and read.records:
        from tdm_dagster.datasets.gated import gate_import

        verdict = gate_import(read, config, f"dataset_{name}_{Path(path).name}", level=level, salvage=salvage)
    if read.records:  # else append_read refuses: a refused import leaves no empty dataset behind
        registry.create(name, description=description, exist_ok=True)
    return append_read(registry, home, name, read, verdict, description=description or f"imported from {Path(path).name}", files=files)
