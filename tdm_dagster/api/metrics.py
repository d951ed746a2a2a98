"""``/metrics``: Prometheus metrics of the data under ``$TDM_HOME``, computed at each scrape.

The service keeps its own ``CollectorRegistry`` (never the process-global one), holding
one collector that reads the state the CLI's ``tdm stats`` reads (the batch catalog and
its quality reports, the queue, the dataset registry, checkpoints) and one live
histogram of the service's own validations. Values are snapshots of that state, so they
are gauges; a histogram's buckets count batches.

- ``tdm_gate_records{source, outcome}``: records the gate approved / rejected, by batch source
- ``tdm_gate_check_records{check, outcome}``: records that passed / failed each quality check
- ``tdm_batches{outcome}``: batches approved, rejected, or with no report (failed or in flight)
- ``tdm_queue_files{priority}``: queue depth (batch files waiting) per priority
- ``tdm_gate_check_seconds{check}``: histogram of each check's time per batch
- ``tdm_api_validate_seconds{level}``: histogram of ``POST /v1/validate`` latency in this service
- ``tdm_dataset_versions{dataset}``, ``tdm_dataset_records{dataset}``: versions kept, records in the current version
- ``tdm_last_generation_timestamp_seconds``, ``tdm_last_training_timestamp_seconds``: newest
  generated batch the gate judged, newest complete checkpoint (0: never)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tdm_dagster.config.sections import GENERATION_SOURCES
from tdm_dagster.home import TdmHome

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _histogram(name: str, documentation: str, label: str, samples: dict[str, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, seconds in sorted(samples.items()):
        buckets = [(str(bound), float(sum(1 for s in seconds if s <= bound))) for bound in LATENCY_BUCKETS]
        family.add_metric([value], [*buckets, ("+Inf", float(len(seconds)))], sum(seconds))
    return family


def _timestamp(value: Any) -> float:
    from tdm_dagster.stats.batch_catalog import parse_time

    parsed = parse_time(value) if not isinstance(value, datetime) else value
    return parsed.timestamp() if parsed else 0.0


class StateCollector(Collector):
    """Everything but the live histogram, read from ``home`` at each scrape."""

    def __init__(self, home: TdmHome) -> None:
        self.home = home

    def collect(self) -> Iterator[Metric]:
        yield from self._batches()
        yield from self._queue()
        yield from self._datasets()
        yield self._last_training()

    def _batches(self) -> Iterator[Metric]:
        from tdm_dagster.stats.batch_catalog import load_batches, report_counts

        records = GaugeMetricFamily("tdm_gate_records", "Records the gate judged, by batch source and outcome", labels=["source", "outcome"])
        checks = GaugeMetricFamily("tdm_gate_check_records", "Records that passed or failed each quality check", labels=["check", "outcome"])
        batches = GaugeMetricFamily("tdm_batches", "Batches by outcome (no_report: failed before its checks, or in flight)", labels=["outcome"])
        by_source: Counter[tuple[str, str]] = Counter()
        by_check: Counter[tuple[str, str]] = Counter()
        outcomes: Counter[str] = Counter({"approved": 0, "rejected": 0, "no_report": 0})
        seconds: dict[str, list[float]] = {}
        last_generation = 0.0
        for batch in load_batches(self.home):
            if batch.report is None:
                outcomes["no_report"] += 1
                continue
            outcomes["approved" if batch.report.get("overall_pass") else "rejected"] += 1
            _generated, approved, rejected = report_counts(batch.report)
            by_source[(batch.source, "approved")] += approved
            by_source[(batch.source, "rejected")] += rejected
            for check, result in (batch.report.get("results") or {}).items():
                details = result.get("details") or {}
                total, failed = int(details.get("records", 0)), int(details.get("failed_records", 0))
                by_check[(check, "passed")] += total - failed
                by_check[(check, "failed")] += failed
                if isinstance(details.get("seconds"), (int, float)):
                    seconds.setdefault(check, []).append(float(details["seconds"]))
            if batch.source in GENERATION_SOURCES and batch.created_at:
                last_generation = max(last_generation, batch.created_at.timestamp())
        for (source, outcome), count in sorted(by_source.items()):
            records.add_metric([source, outcome], count)
        for (check, outcome), count in sorted(by_check.items()):
            checks.add_metric([check, outcome], count)
        for outcome, count in sorted(outcomes.items()):
            batches.add_metric([outcome], count)
        yield from (records, checks, batches)
        yield _histogram("tdm_gate_check_seconds", "Seconds each quality check took per batch", "check", seconds)
        yield GaugeMetricFamily("tdm_last_generation_timestamp_seconds",
                                "Unix time of the newest generated batch the gate judged (0: none)", value=last_generation)  # fmt: skip

    def _queue(self) -> Iterator[Metric]:
        from tdm_dagster.queue.store import TrainingQueue

        depth = GaugeMetricFamily("tdm_queue_files", "Batch files waiting for the trainer, per priority", labels=["priority"])
        for priority, count in TrainingQueue(self.home).depth().items():
            depth.add_metric([priority], count)
        yield depth

    def _datasets(self) -> Iterator[Metric]:
        from tdm_dagster.datasets import DatasetRegistry

        versions = GaugeMetricFamily("tdm_dataset_versions", "Versions kept per dataset", labels=["dataset"])
        records = GaugeMetricFamily("tdm_dataset_records", "Records in each dataset's current version", labels=["dataset"])
        registry = DatasetRegistry(self.home)
        if registry.catalog_path.exists():
            for info in registry.list_datasets():
                found = registry.versions(info.name)
                versions.add_metric([info.name], len(found))
                current = [v for v in found if v.version == info.current_version]
                records.add_metric([info.name], current[0].record_count if current else 0)
        yield from (versions, records)

    def _last_training(self) -> Metric:
        from tdm_dagster.training.checkpoints import list_checkpoints

        newest = 0.0
        if self.home.training_dir.is_dir():
            for run in self.home.training_dir.iterdir():
                for checkpoint in list_checkpoints(run) if run.is_dir() else ():
                    newest = max(newest, _timestamp(checkpoint.meta.get("created_at")))
        return GaugeMetricFamily("tdm_last_training_timestamp_seconds",
                                 "Unix time of the newest complete checkpoint (0: none)", value=newest)  # fmt: skip


class ApiMetrics:
    """The service's registry: the state collector and the live validation latency."""

    def __init__(self, home: TdmHome) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(home))
        self.validate_seconds = Histogram("tdm_api_validate_seconds", "Latency of POST /v1/validate in this service",
                                          ["level"], registry=self.registry, buckets=LATENCY_BUCKETS)  # fmt: skip

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
