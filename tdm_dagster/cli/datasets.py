"""``tdm datasets``: the dataset registry from the command line; every command has ``--json``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import click

from tdm_dagster.cli.common import config, emit, home, json_option
from tdm_dagster.cli.derive_options import augmentation, intent_mapping_of, pair
from tdm_dagster.datasets.names import name_problem, shown, version_problem

class _Checked(click.ParamType):
    """A dataset name or version, refused (exit 2, naming the argument or flag) before anything runs."""

    def __init__(self, name: str, problem: Callable[[object], str | None]) -> None:
        self.name = name
        self.problem = problem

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        problem = self.problem(value)
        if problem:
            self.fail(f"{shown(value)}: {problem}", param, ctx)
        return value


DATASET_NAME = _Checked("name", name_problem)
VERSION = _Checked("version", version_problem)


def _registry():
    from tdm_dagster.datasets import DatasetRegistry

    return DatasetRegistry(home())


class _DatasetErrors(click.Group):
    """Registry errors become clean CLI errors (exit 1; a bad name or version exit 2) instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        from tdm_dagster.datasets.errors import DatasetError, DeletionRefusedError, InvalidNameError, InvalidVersionError

        try:
            return super().invoke(ctx)
        except DeletionRefusedError as exc:
            raise click.ClickException(f"{exc.refusal}; add --force to delete it anyway") from exc
        except (InvalidNameError, InvalidVersionError) as exc:
            raise click.UsageError(str(exc)) from exc
        except (DatasetError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_DatasetErrors)
def datasets() -> None:
    """Versioned datasets: immutable, checksummed, with lineage, diff and rollback."""


def _version_line(v) -> str:
    return f"{v.version:>7}  {v.record_count:>9,} records  {v.created_at}  {v.checksum[:12]}  {v.description}"


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.option("--description", default="")
@click.option("--owner")
@click.option("--tag", "tags", multiple=True, help="Repeatable.")
@click.option("--spec", help="The spec its records follow, e.g. chat_sft_v1.")
@json_option
def create(name: str, description: str, owner: str | None, tags: tuple[str, ...], spec: str | None, as_json: bool) -> None:
    """Create an empty dataset."""
    info = _registry().create(name, description=description, owner=owner, tags=tags, spec=spec)
    emit(asdict(info), as_json, f"created dataset {info.name}")


@datasets.command("list")
@json_option
def list_datasets(as_json: bool) -> None:
    """Every dataset with its current version."""
    infos = _registry().list_datasets()
    lines = [f"{i.name:<24} current {i.current_version or '-':>7}  {', '.join(i.tags)}  {i.description}" for i in infos]
    emit([asdict(i) for i in infos], as_json, "\n".join(lines) or "no datasets yet")


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@json_option
def show(name: str, as_json: bool) -> None:
    """A dataset and its current version."""
    registry = _registry()
    info = registry.describe(name)
    current = registry.version_info(name) if info.current_version else None
    data = {**asdict(info), "current": asdict(current) if current else None}
    text = f"{info.name}: {info.description}\nowner {info.owner}, tags {', '.join(info.tags) or '-'}, spec {info.spec or '-'}"
    if current:
        text += f"\ncurrent {_version_line(current)}\nfrom {len(current.source_batches)} batch(es); metrics {current.metrics}"
    emit(data, as_json, text)


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--major", is_flag=True, help="Bump the major version.")
@click.option("--description", default="")
@json_option
def add(name: str, files: tuple[str, ...], major: bool, description: str, as_json: bool) -> None:
    """Append approved batch files (JSONL of records, e.g. from the queue) as a new version.

    A file already added (same sha256) is refused; records already in the dataset are left out.
    A record that breaks its spec (e.g. a labelled example with a bad span) goes to rejected/."""
    from tdm_dagster.datasets.additions import file_entry
    from tdm_dagster.formats import ImportResult, import_records

    from tdm_dagster.datasets.conformance import refuse_nonconforming

    read, entries = ImportResult(), []
    for path in files:
        part = import_records(path, "jsonl")
        entries.append(file_entry(path, part.input_records))
        read.extend(part)
    refuse_nonconforming(read, config(home()).labels)
    _append_read(_registry(), name, read, as_json, source_batches=[Path(path).stem for path in files], major=major, description=description, files=entries)


def _append_read(registry, name: str, read, as_json: bool, gate: dict[str, Any] | None = None, **options: Any) -> None:
    """Append the records read (and approved by the ``gate``, when it ran) as a new version;
    the others go to ``rejected/`` with their place, reasons and bytes, and the output says so."""
    from tdm_dagster.datasets.intake import append_read
    from tdm_dagster.progress import terminal_progress

    with terminal_progress(f"adding {len(read.records)} records to {name}", quiet=as_json):
        added = append_read(registry, home(), name, read, gate, **options)
    _show_added(name, added, as_json)


def _show_added(name: str, added, as_json: bool) -> None:
    emit(added.to_dict(), as_json, "\n".join([f"{name} {_version_line(added.version)}", *added.lines]))


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@json_option
def versions(name: str, as_json: bool) -> None:
    """Every version, oldest first."""
    found = _registry().versions(name)
    emit([asdict(v) for v in found], as_json, "\n".join(_version_line(v) for v in found) or "no versions yet")


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.argument("old", type=VERSION)
@click.argument("new", type=VERSION)
@json_option
def diff(name: str, old: str, new: str, as_json: bool) -> None:
    """Added, removed and changed records between two versions, and metric deltas."""
    summary = _registry().diff(name, old, new).summary()
    text = "\n".join(f"{key}: {value}" for key, value in summary.items())
    emit(summary, as_json, text)


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.argument("version", type=VERSION)
@json_option
def rollback(name: str, version: str, as_json: bool) -> None:
    """Make VERSION current again (history is kept)."""
    info = _registry().rollback(name, version)
    emit(asdict(info), as_json, f"{name}: current version is now {info.current_version}")


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.option("--from", "parent", type=VERSION, help="Version to derive from (default: current).")
@click.option("--where", "where", multiple=True, help="Keep records with FIELD=VALUE (dotted field; repeatable).")
@click.option("--remap", nargs=2, multiple=True, metavar="FIELD OLD=NEW", help="Rename a label value.")
@click.option("--intent-mapping", "intent_mapping", multiple=True, metavar="OLD=NEW|FILE.json|config",
              help="Rename expected_intent of labelled examples: pairs, a JSON object file, or labels.intent_mapping from config.")
@click.option("--confidence", nargs=3, type=(str, float, float), multiple=True, metavar="FIELD SCALE OFFSET", help="field = clip(value*scale+offset, 0, 1).")
@click.option("--clean", is_flag=True, help="Whitespace and Unicode NFC on every message.")
@click.option("--dedup", type=click.Choice(["lexical", "semantic", "both"]), is_flag=False, flag_value="lexical", default=None,
              help="Drop exact copies and near-duplicates by words (lexical, the default), by meaning (semantic: the [semantic] extra) or both.")
@click.option("--balance", "balance_by", help="Downsample every class of this field to the smallest.")
@click.option("--augment", type=click.Choice(["reseed", "reorder", "format", "model"]),
              help="Add an augmented record beside each record it applies to (model: the inference server rewrites prompts).")
@click.option("--augment-seed", default=0, show_default=True, help="Seed of the augmentation.")
@click.option("--allow-empty", is_flag=True, help="Commit the new version even when the steps leave no record.")
@click.option("--description", default="")
@json_option
def derive(name: str, parent: str | None, where: tuple[str, ...], remap: tuple[tuple[str, str], ...], intent_mapping: tuple[str, ...], confidence: tuple, clean: bool, dedup: str | None, balance_by: str | None, augment: str | None, augment_seed: int, allow_empty: bool, description: str, as_json: bool) -> None:
    """A new version from an existing one with modifications; each step reports its counts.
    --where compares by type: FIELD=false matches the boolean false, FIELD=3 the number 3.
    Exit 1, and no version, when the steps would leave no record (unless --allow-empty)."""
    from tdm_dagster.datasets.steps import (
        AdjustConfidence,
        BalanceClasses,
        CleanText,
        FieldFilter,
        RemapLabel,
        dedup_steps,
    )  # fmt: skip

    steps: list = []
    if where:
        steps.append(FieldFilter(dict(pair(item, "--where") for item in where)))
    for field, mapping in remap:
        old, new = pair(mapping, "--remap")
        steps.append(RemapLabel(field, {old: new}))
    if intent_mapping:
        steps.append(RemapLabel("expected_intent", intent_mapping_of(intent_mapping)))
    steps += [AdjustConfidence(field, scale=scale, offset=offset) for field, scale, offset in confidence]
    if clean:
        steps.append(CleanText())
    if dedup:
        steps += dedup_steps(dedup)
    if balance_by:
        steps.append(BalanceClasses(balance_by))
    if augment:
        parent = parent or _registry().version_info(name).version  # the version the origins name
    if not steps and not augment:
        raise click.UsageError("say what to change: --where, --remap, --intent-mapping, --confidence, --clean, --dedup, --balance or --augment")
    from tdm_dagster.datasets.errors import EmptyDeriveError, NothingChangedError

    try:
        with augmentation(name, parent, augment, augment_seed) as augmenting:
            version = _registry().derive(name, [*steps, *augmenting], parent=parent, description=description, allow_empty=allow_empty)
    except EmptyDeriveError as empty:
        raise click.ClickException(f"{empty}; add --allow-empty to commit an empty version") from empty
    except NothingChangedError as unchanged:  # an outcome, not a failure: say so, exit 0
        emit({"version": None, "unchanged": unchanged.version, "steps": unchanged.reports}, as_json, str(unchanged))
        return
    reports = version.operation.get("steps", [])
    emit(asdict(version), as_json, "\n".join([f"{name} {_version_line(version)}", *(json.dumps(r) for r in reports)]))


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.option("--version", type=VERSION)
@click.option("--ratios", default="train=0.8,val=0.1,test=0.1", show_default=True)
@click.option("--stratify", help="Field to stratify by, e.g. metadata.skill.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Write each split as <out>/<split>.jsonl.")
@json_option
def split(name: str, version: str | None, ratios: str, stratify: str | None, seed: int, out: str | None, as_json: bool) -> None:
    """Deterministic train/val/test splits; duplicates never cross splits."""
    from tdm_dagster.files.atomic import atomic_write_jsonl

    parsed = {}
    for part in ratios.split(","):
        key, value = pair(part, "--ratios")
        parsed[key] = float(value)
    result = _registry().split(name, version, ratios=parsed, stratify_by=stratify, seed=seed)
    counts = {split_name: len(records) for split_name, records in result.splits.items()}
    if out:
        for split_name, records in result.splits.items():
            atomic_write_jsonl(Path(out) / f"{split_name}.jsonl", records)
    data = {"counts": counts, "duplicate_groups": result.groups, "grouped_records": result.grouped_records, "out": out}
    emit(data, as_json, ", ".join(f"{k}: {v}" for k, v in counts.items()) + f" ({result.grouped_records} records kept with their duplicates)")


@datasets.command("export")
@click.argument("name", type=DATASET_NAME)
@click.argument("path", type=click.Path())
@click.option("--version", type=VERSION)
@click.option("--format", "fmt", help="jsonl, json, csv, parquet, hf, spacy, chat_jsonl, pickle (default: from PATH).")
@json_option
def export_dataset(name: str, path: str, version: str | None, fmt: str | None, as_json: bool) -> None:
    """Write a version in a format your trainer reads."""
    from tdm_dagster.formats import export_records
    from tdm_dagster.progress import counted, terminal_progress

    fmt = _file_format(path, fmt, export=True)
    info = _registry().version_info(name, version)
    with terminal_progress(f"exporting {name} {info.version}", info.record_count, quiet=as_json) as advance:
        written = export_records(counted(_registry().records(name, info.version), advance), path, fmt)
    emit({"dataset": name, "version": info.version, "path": path, "records": written}, as_json, f"wrote {written} records of {name} {info.version} to {path}")


def _file_format(path: str, fmt: str | None, *, export: bool) -> str:
    """``--format``, else what PATH's name says; a name that says nothing is a usage error naming ``--format``."""
    from tdm_dagster.datasets.intake import choose_format

    try:
        return choose_format(path, fmt, export=export)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--format'") from error


@datasets.command("import")
@click.argument("name", type=DATASET_NAME)
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", help="Default: from PATH.")
@click.option("--allow-pickle", is_flag=True, help="Unpickle PATH. Only for a file you trust: unpickling runs code.")
@click.option("--no-gate", is_flag=True, help="Import every readable record without running the gate.")
@click.option("--level", type=click.Choice(["quick", "standard", "deep"]), help="Gate level (default: gate.level).")
@click.option("--salvage/--no-salvage", default=None,
              help="When the batch fails as a whole, still import the records that pass on their own, or import none "
                   "(default: gate.on_batch_failure.import, salvage unless configured).")  # fmt: skip
@click.option("--description", default="")
@json_option
def import_dataset(
    name: str, path: str, fmt: str | None, allow_pickle: bool, no_gate: bool, level: str | None, salvage: bool | None, description: str, as_json: bool
) -> None:
    """Append records from a file (creating the dataset if needed) as a new version.

    The records go through the gate first (as an inbox file would) unless --no-gate; the
    rejected ones are kept with their reasons in rejected/. A file already added is refused."""
    from tdm_dagster.datasets.intake import PickleRefusedError, import_file

    from tdm_dagster.progress import terminal_progress

    fmt = _file_format(path, fmt, export=False)
    try:
        with terminal_progress(f"importing {Path(path).name}", quiet=as_json):  # the time it takes, until the gate reports counts
            added = import_file(_registry(), home(), config(home()), name, path, fmt, allow_pickle=allow_pickle, gate=not no_gate,
                                level=level, salvage=salvage, description=description, pickle_flag="--allow-pickle")  # fmt: skip
    except PickleRefusedError as refused:
        raise click.UsageError(str(refused)) from refused
    _show_added(name, added, as_json)


@datasets.command()
@click.argument("name", type=DATASET_NAME)
@click.option("--version", type=VERSION, help="Delete only this version (default: the whole dataset).")
@click.option("--force", is_flag=True, help="Also when current, or a parent of another version.")
@json_option
def delete(name: str, version: str | None, force: bool, as_json: bool) -> None:
    """Delete a version or a dataset; refused for the current version or a parent unless --force."""
    registry = _registry()
    if version is not None:
        registry.delete_version(name, version, force=force)
    else:
        registry.delete_dataset(name, force=force)
    what = f"{name} {version}" if version is not None else name
    emit({"deleted": what}, as_json, f"deleted {what}")


@datasets.command()
@click.argument("name", required=False, type=DATASET_NAME)
@click.option("--version", type=VERSION)
@json_option
def verify(name: str | None, version: str | None, as_json: bool) -> None:
    """Check every object and checksum; exit 1 on any problem."""
    report = _registry().verify(name, version)
    text = f"{'ok' if report.ok else 'PROBLEMS'}: {report.versions} versions, {report.objects} objects, {report.records} records"
    emit(asdict(report), as_json, "\n".join([text, *report.problems]))
    if not report.ok:
        raise SystemExit(1)
