"""The test step of a batch: validated_batch (the schema gate) -> quality_report (the verdict).

``quality_report`` runs the whole gate (:func:`tdm_dagster.gate.run.run_gate`) and saves
its outcome: the report, the approved records, their scores and the rejected records
with reasons, so a rejected batch keeps all of them on disk. The blocking asset checks on
``quality_report`` (``tdm_dagster/checks/gate.py``) only show that saved outcome: a batch
that fails any of them stops there, and ``queued_batch`` is only materialized for approved
batches. A failed batch whose source salvages (``gate.on_batch_failure``, see
:mod:`tdm_dagster.gate.salvage`) keeps the records that pass on their own: its checks
still fail, at WARN severity so they do not block, and those records are queued.
"""

import dagster as dg

from tdm_dagster.assets.generate import generated_batch
from tdm_dagster.gate.reports import save_outcome
from tdm_dagster.gate.salvage import batch_source, on_batch_failure
from tdm_dagster.gate.schemas import schema_gate
from tdm_dagster.lineage.capture import gate_config_hash
from tdm_dagster.partitions import batch_partitions
from tdm_dagster.records.batches import BatchStore
from tdm_dagster.resources import TdmHomeResource


@dg.asset(
    partitions_def=batch_partitions,
    group_name="test",
    kinds={"python"},
    deps=[generated_batch],
    description="The batch after the deny-by-default schema gate, read as chats.",
)
def validated_batch(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.gate.run import GateInput  # the gate (numpy and all) loads when a batch is tested, not with the location

    store = BatchStore(tdm.home())
    batch_id = context.partition_key
    gate_input = GateInput.from_batch(store, batch_id)
    schema = schema_gate(gate_input.records, gate_input.specs, gate_input.read_issues)
    store.save_validated(batch_id, schema)
    if schema.batch_error:
        context.log.error(f"schema gate refused batch {batch_id}: {schema.batch_error}")
    problems = {i: found for i, found in (dict(gate_input.read_issues) | schema.rejected).items() if found}
    if problems and not schema.batch_error:
        context.log.warning(f"{len(problems)} of {schema.total} records could not be read or break their spec")
    samples = [f"record {i + 1}: {found[0].message}" for i, found in sorted(problems.items())[:5]]
    return dg.MaterializeResult(
        metadata={
            "spec": schema.spec,
            "records": dg.MetadataValue.int(schema.total),
            "schema_valid": dg.MetadataValue.int(len(schema.valid_indices)),
            "schema_rejected": dg.MetadataValue.int(len(problems)),
            "schema_error": schema.batch_error or "",
            "sample_rejections": dg.MetadataValue.md("\n".join(f"- {s}" for s in samples) or "none"),
        }
    )


@dg.asset(
    partitions_def=batch_partitions,
    group_name="test",
    kinds={"json"},
    deps=[validated_batch],
    description="The gate's verdict on the batch (`reports/<batch>.json`, approved and rejected records); the quality suites run as its checks.",
)
def quality_report(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.gate.run import GateInput, run_gate

    home = tdm.home()
    batch_id = context.partition_key
    store = BatchStore(home)
    gate_input = GateInput.from_batch(store, batch_id)
    config = tdm.config()
    outcome = run_gate(gate_input, config, queued_in=home)
    source = batch_source(store.load_plan(batch_id).source)
    outcome = on_batch_failure(outcome, gate_input.records, source, config.gate.on_batch_failure[source])
    outcome.report["config_hash"] = gate_config_hash(config)  # a checkpoint's lineage names the rules that let a batch in
    save_outcome(home, batch_id, gate_input.records, outcome, sources=gate_input.sources)
    report = outcome.report
    records = report["records"]
    context.log.info(f"batch {batch_id}: {records['approved']} approved, {records['rejected']} rejected ({report['recommendation']})")
    metadata: dict = {
        "overall_pass": dg.MetadataValue.bool(bool(report["overall_pass"])),
        "recommendation": report["recommendation"],
        "passed_checks": dg.MetadataValue.int(report["passed_checks"]),
        "failed_checks": dg.MetadataValue.int(report["failed_checks"]),
        "generated": dg.MetadataValue.int(records["generated"]),
        "approved": dg.MetadataValue.int(records["approved"]),
        "rejected": dg.MetadataValue.int(records["rejected"]),
        "salvaged": dg.MetadataValue.int(records.get("salvaged", 0)),
        "approval_rate": dg.MetadataValue.float(records["approval_rate"]),
        "path": dg.MetadataValue.path(str(home.report_file(batch_id))),
    }
    for name, value in report.get("metrics", {}).items():
        if value is not None:
            metadata[f"metric_{name}"] = dg.MetadataValue.float(value)
    for name, count in report.get("tiers", {}).items():
        metadata[f"tier_{name}"] = dg.MetadataValue.int(count)
    return dg.MaterializeResult(metadata=metadata)
