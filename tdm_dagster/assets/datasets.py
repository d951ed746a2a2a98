"""training_dataset: approved batches accumulate into immutable dataset versions.

Each materialization appends the batches approved since the last version as a new
version of the configured dataset (``dataset.name``), so the lineage in the UI runs from
the batches to the dataset, and the version, checksum, size and quality of every
version are plotted across materializations.
"""

import dagster as dg

from tdm_dagster.assets.queue import queued_batch
from tdm_dagster.files.atomic import read_jsonl
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.gate.reports import iter_reports
from tdm_dagster.gate.salvage import has_queueable_records
from tdm_dagster.resources import TdmHomeResource

_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("messages", "list<struct<role: string, content: string>>", description="the chat"),
        dg.TableColumn("metadata", "struct", description="skill, level, source, spec, ..."),
        dg.TableColumn("id", "string", description="optional record id"),
    ]
)


@dg.asset(
    group_name="datasets",
    kinds={"duckdb", "parquet"},
    deps=[queued_batch],
    description="The training dataset: a new immutable, checksummed version with every batch approved since the last one.",
)
def training_dataset(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.datasets import DatasetRegistry
    from tdm_dagster.datasets.names import name_problem, shown

    home = tdm.home()
    settings = tdm.config().dataset
    problem = name_problem(settings.name)
    if problem:
        raise dg.Failure(description=f"dataset.name in config.yaml is {shown(settings.name)}: {problem}", allow_retries=False)
    registry = DatasetRegistry(home)
    info = registry.create(settings.name, description=settings.description, spec="chat_sft_v1", tags=["sft"], exist_ok=True)
    included = {batch for version in registry.versions(settings.name) for batch in version.source_batches}
    approved = [r for r in iter_reports(home) if has_queueable_records(r) and r.get("batch_id") and r["batch_id"] not in included]
    store = BatchStore(home)
    if not approved:
        context.log.info(f"dataset {settings.name}: no newly approved batches; current version {info.current_version}")
        version = registry.version_info(settings.name) if info.current_version else None
        new_batches = []
    else:
        paths = [store.folder(r["batch_id"]) / "approved.jsonl" for r in approved]
        records = sum(r["records"]["approved"] for r in approved)
        metrics = {
            "approval_rate": round(records / max(1, sum(r["records"]["generated"] for r in approved)), 4),
            **{f"mean_{name}": round(sum(r["metrics"][name] for r in approved if r.get("metrics", {}).get(name) is not None) / len(approved), 4)
               for name in ("overall", "validity", "diversity")},
        }  # fmt: skip
        appended = registry.append_new_batches(
            settings.name,
            {r["batch_id"]: read_jsonl(path) for r, path in zip(approved, paths)},
            metrics=metrics,
            description=f"{len(approved)} approved batch(es)",
        )
        if appended is None:
            context.log.info(f"dataset {settings.name}: another run added these {len(approved)} batch(es) meanwhile")
        else:
            context.log.info(f"dataset {settings.name} {appended.version}: +{records} records from {len(approved)} batch(es)")
        version = appended or registry.version_info(settings.name)
        new_batches = appended.operation["new_batches"] if appended else []
    if version is None:
        return dg.MaterializeResult(metadata={"dataset": settings.name, "version": "none", "dagster/row_count": 0})
    return dg.MaterializeResult(
        metadata={
            "dataset": settings.name,
            "version": version.version,
            "checksum": version.checksum,
            "dagster/row_count": dg.MetadataValue.int(version.record_count),
            "dagster/column_schema": _COLUMNS,
            "source_batches": dg.MetadataValue.int(len(version.source_batches)),
            "new_batches": dg.MetadataValue.json(new_batches),
            **{f"metric_{k}": dg.MetadataValue.float(float(v)) for k, v in version.metrics.items() if isinstance(v, (int, float))},
        },
        data_version=dg.DataVersion(version.checksum),
    )
