"""docs/python-api.md runs as written: its python blocks, in order, in one namespace, in a
fresh home whose ``storage.remote`` is a bucket on a real moto S3 server; then what the
examples did is checked where it landed (the dataset, the export, the remote)."""

from __future__ import annotations

import re
from pathlib import Path

from tdm_dagster.datasets import DatasetRegistry
from tests.support.object_stores import remote_files, use

DOCS = Path(__file__).resolve().parents[3] / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_the_python_api_examples_run_as_written(home, s3_server, monkeypatch, tmp_path):
    url = use(s3_server, monkeypatch)
    home.config_path.write_text(f"storage:\n  remote: {url}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall(DOCS.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{DOCS.name} block {number}", "exec"), namespace)
    assert namespace["tdm"].home.root == home.root
    versions = DatasetRegistry(home).versions("sft")
    assert len(versions) == 1 and versions[0].record_count + namespace["added"].rejected == 40
    assert sum(1 for _ in open(tmp_path / "sft.jsonl")) == versions[0].record_count
    assert f"datasets/sft/{versions[0].version}.json" in remote_files(s3_server, url)
