"""data_stats: the stats of ``tdm stats`` as numbers on each materialization, so the
asset's Plots tab in the Dagster UI charts how volume, approval, tokens, storage, queue
depth and each source's health move over time (``refresh_stats`` job, hourly)."""

import dagster as dg

from tdm_dagster.assets.queue import queued_batch
from tdm_dagster.resources import TdmHomeResource


@dg.asset(
    group_name="stats",
    kinds={"json"},
    deps=[queued_batch],
    description="Totals by source, format and tier, approval rate, tokens, storage and queue depth, as plottable metadata.",
)
def data_stats(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.stats.summary import trend_metrics

    metrics = trend_metrics(tdm.home())
    context.log.info(f"{metrics['approved']} approved of {metrics['generated']} generated; {metrics['queue_files']} queue file(s)")
    return dg.MaterializeResult(
        metadata={
            name: dg.MetadataValue.float(value) if isinstance(value, float) else dg.MetadataValue.int(value)
            for name, value in metrics.items()
        }
    )
