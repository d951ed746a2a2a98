"""Remote storage: push and pull of N records, then of a 1 % append, against a local S3 server.

Starts moto's S3 server on 127.0.0.1 (``python -m moto.server``, in memory), builds N
small chat records with the built-in binary generator (as ``bench_datasets.py`` does) as
version 1.0 of a fresh registry, and measures with the same code ``tdm datasets
push/pull`` runs:

* ``push 1.0``: every chunk sent, then the manifest;
* ``push 1.1`` after appending 1 % new records: only the new chunk is sent;
* ``pull 1.0`` into a second, empty home, and then ``pull 1.1``: only the new chunk is received;
  every chunk re-hashed on arrival, the version checksum recomputed before each commit.

Bytes are what crossed the wire (object bodies); seconds include listing, hashing,
manifests and the catalog commit. moto is a single-process Python server on the same
machine, so the seconds measure this code and moto together, not a network.

Run: ``.venv/bin/python bench/bench_storage.py [--records 1000000]`` (writes
``bench/results/storage.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.bench_datasets import BATCH, folder_bytes, generated, timed  # noqa: E402
from tdm_dagster.datasets import DatasetRegistry  # noqa: E402
from tdm_dagster.datasets.sync import pull, push  # noqa: E402
from tdm_dagster.home import TdmHome  # noqa: E402
from tdm_dagster.progress import stage  # noqa: E402
from tdm_dagster.storage.remote import Remote  # noqa: E402
from tests.support.object_stores import ObjectStoreServer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "storage.json"
NAME = "bench"


def main(records: int, append_fraction: float) -> dict:
    with stage(f"generating {records:,} records"):
        base = generated(range(max(1, records // BATCH)))[:records]
        extra = generated(range(records // BATCH + 1, records // BATCH + 2))[: max(1, int(records * append_fraction))]
    server = ObjectStoreServer.s3().start()
    os.environ.update(server.env())
    rows = []
    try:
        bucket = server.new_bucket()
        remote = Remote(f"s3://{bucket}/bench")
        with tempfile.TemporaryDirectory() as scratch:
            trainer = DatasetRegistry(TdmHome(Path(scratch) / "trainer"))
            trainer.create(NAME)
            with stage(f"write {records:,} records"):
                trainer.append(NAME, base)
            full_bytes = folder_bytes(trainer.store.root)
            del base
            gc.collect()
            first, seconds = timed("push 1.0", partial(push, trainer, remote, NAME, "1.0"))
            rows.append(("push 1.0", records, first, seconds))
            trainer.append(NAME, extra)
            second, seconds = timed("push 1.1 (1 % append)", partial(push, trainer, remote, NAME))
            rows.append(("push 1.1 (1 % append)", len(extra), second, seconds))
            serving = DatasetRegistry(TdmHome(Path(scratch) / "serving"))
            got, seconds = timed("pull 1.0", partial(pull, serving, remote, NAME, "1.0"))
            rows.append(("pull 1.0", records, got, seconds))
            update, seconds = timed("pull 1.1 (1 % append)", partial(pull, serving, remote, NAME))
            rows.append(("pull 1.1 (1 % append)", len(extra), update, seconds))
            assert serving.version_info(NAME).checksum == trainer.version_info(NAME).checksum
    finally:
        server.kill()
    results = {
        "records": records,
        "appended_records": len(extra),
        "local_object_bytes_1_0": full_bytes,
        "steps": [
            {"step": step, "new_records": count, "objects": t.objects, "objects_skipped": t.objects_present,
             "bytes": t.bytes, "seconds": round(seconds, 2), "mb_per_second": round(t.bytes / seconds / 1e6, 1)}
            for step, count, t, seconds in rows
        ],  # fmt: skip
        "append_push_bytes_ratio": round(rows[1][2].bytes / rows[0][2].bytes, 5),
        "append_pull_bytes_ratio": round(rows[3][2].bytes / rows[2][2].bytes, 5),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


def table(results: dict) -> str:
    lines = [f"{'step':<24}{'records':>10}{'objects':>9}{'skipped':>9}{'bytes':>14}{'seconds':>9}{'MB/s':>7}"]
    for row in results["steps"]:
        lines.append(
            f"{row['step']:<24}{row['new_records']:>10,}{row['objects']:>9}{row['objects_skipped']:>9}"
            f"{row['bytes']:>14,}{row['seconds']:>9}{row['mb_per_second']:>7}"
        )
    lines.append(f"1 % append: push sent {results['append_push_bytes_ratio']:.2%} of the first push's bytes, pull received {results['append_pull_bytes_ratio']:.2%}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--append-fraction", type=float, default=0.01)
    args = parser.parse_args()
    print(table(main(args.records, args.append_fraction)))
