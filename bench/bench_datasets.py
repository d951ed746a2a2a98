"""Dataset registry at 1,000,000 records: dedup storage, checkout time, verification throughput.

Builds 1,000,000 small chat records with the built-in binary generator (20 batches of
50,000 across levels and seeds), stores them as version 1.0 of a fresh registry,
appends 1% new records as 1.1 and measures:

* ``append_storage_ratio``: bytes the 1% append added under ``datasets/`` (objects and
  catalog) / bytes of the 1,000,000-record dataset (goal <= 0.02);
* ``checkout_seconds``: ``list(registry.records(name, "1.0"))``, every object and the
  version checksum verified first;
* ``verify_*``: ``registry.verify(name, "1.0")``, which re-hashes every record.

Run: ``.venv/bin/python bench/bench_datasets.py`` (writes ``bench/results/datasets.json``).
"""

from __future__ import annotations

import gc
import json
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.home import TdmHome
from tdm_dagster.progress import stage

RECORDS = 1_000_000
BATCH = 50_000
APPEND_FRACTION = 0.01
RESULTS = Path(__file__).parent / "results" / "datasets.json"


def generated(batches: range) -> list[dict]:
    generator = get_generator("binary")
    return [
        record for batch in batches for record in generator.generate(batch % generator.max_level + 1, BATCH, seed=1000 + batch)
    ]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def timed(description: str, action):
    """``action()`` and its seconds, shown on a terminal as a stage (:func:`tdm_dagster.progress.stage`)."""
    with stage(description):
        start = time.perf_counter()
        result = action()
        return result, time.perf_counter() - start


def main() -> dict:
    with stage(f"generating {RECORDS:,} records"):
        base = generated(range(RECORDS // BATCH))
        extra = generated(range(RECORDS // BATCH, RECORDS // BATCH + 1))[: int(RECORDS * APPEND_FRACTION)]
    with tempfile.TemporaryDirectory() as scratch:
        registry = DatasetRegistry(TdmHome(Path(scratch)))
        registry.create("binary_1m", description="benchmark")
        _, write_seconds = timed(f"write {RECORDS:,} records", partial(registry.append, "binary_1m", base))
        full_bytes = folder_bytes(registry.root)
        _, append_seconds = timed(f"append {len(extra):,} records", partial(registry.append, "binary_1m", extra))
        added_bytes = folder_bytes(registry.root) - full_bytes
        first, last, appended = base[0], base[-1], len(extra)
        del base, extra  # a checkout starts from the registry, not from 1M records already in memory
        gc.collect()
        checked_out, checkout_seconds = timed("check out 1.0", lambda: list(registry.records("binary_1m", "1.0")))
        assert len(checked_out) == RECORDS and (checked_out[0], checked_out[-1]) == (first, last)
        del checked_out
        report, verify_seconds = timed("verify 1.0", lambda: registry.verify("binary_1m", "1.0"))
        assert report.ok and report.records == RECORDS
    results = {
        "records": RECORDS,
        "appended_records": appended,
        "dataset_bytes": full_bytes,
        "append_added_bytes": added_bytes,
        "append_storage_ratio": round(added_bytes / full_bytes, 5),
        "append_storage_ratio_goal": 0.02,
        "write_1m_seconds": round(write_seconds, 2),
        "append_1pct_seconds": round(append_seconds, 2),
        "checkout_1m_seconds": round(checkout_seconds, 2),
        "verify_seconds": round(verify_seconds, 2),
        "verify_records_per_second": round(report.records / verify_seconds),
        "verify_mb_per_second": round(report.bytes / verify_seconds / 1e6, 1),
        "verify_objects": report.objects,
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
