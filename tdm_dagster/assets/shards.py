"""gated_shards: a folder of Parquet shards through the gate as one batch, in-process or
on the Ray cluster (``gate.engine``), through the ``ray`` resource (dagster-ray's, which
connects before the step, where the engine is ray; an empty one otherwise, so the location
never imports dagster-ray for an in-process gate)."""

import dagster as dg

from tdm_dagster.resources import TdmHomeResource


class GatedShardsConfig(dg.Config):
    shards: str
    """A folder of ``.parquet`` shards (readable at the same path on every Ray node)."""
    name: str = "shards"
    """The run's folder under ``$TDM_HOME/shard_gates/``."""
    level: str | None = None
    """quick, standard or deep; default ``gate.level``."""


@dg.asset(
    group_name="gate",
    kinds={"ray", "parquet"},
    description="The gate over a folder of Parquet shards: per-record decisions and the batch report, on Ray when gate.engine is ray.",
)
def gated_shards(context: dg.AssetExecutionContext, config: GatedShardsConfig, tdm: TdmHomeResource, ray: dg.ResourceParam[object]) -> dg.MaterializeResult:
    from tdm_dagster.gate.distributed import gate_shards

    home = tdm.home()
    out = home.shard_gate_dir(config.name)
    report = gate_shards(config.shards, tdm.config(), out, batch_id=config.name, level=config.level)
    counts, run = report["records"], report["run"]
    context.log.info(f"{counts['approved']} approved, {counts['rejected']} rejected of {counts['generated']} ({run['engine']}, {run['shards']} shards, {run['seconds']}s)")
    return dg.MaterializeResult(
        metadata={
            "engine": run["engine"], "shards": run["shards"], "seconds": run["seconds"],
            "records": counts["generated"], "approved": counts["approved"], "rejected": counts["rejected"],
            "overall_pass": report["overall_pass"], "recommendation": report["recommendation"],
            "report": dg.MetadataValue.path(str(out / "report.json")),
        }
    )  # fmt: skip
