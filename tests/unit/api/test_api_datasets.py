"""``/v1/datasets`` against a running service: upload and download round trips, every
error as its 4xx with the message the CLI gives, and the size limit."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.datasets.names import NAME_RULE, VERSION_RULE
from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.generate.generators import get_generator
from tests.support.api_server import api_service

LIMIT = 300_000


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_service(tmp_path_factory.mktemp("api-datasets") / "home", max_upload_bytes=LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    paths = folder / "b1.jsonl", folder / "b2.jsonl"
    atomic_write_jsonl(paths[0], get_generator("binary").generate(2, 40, 1))
    atomic_write_jsonl(paths[1], get_generator("syllo").generate(1, 10, 2))
    return paths


def upload(api, name, path, scope="write", filename=None, **form):
    with open(path, "rb") as handle:
        return httpx.post(f"{api.url}/v1/datasets/{name}/import", files={"file": (filename or path.name, handle)},
                          data={"level": "quick", **form}, headers=api.auth(scope), timeout=120)  # fmt: skip


def test_upload_then_download_round_trip(api, files):
    first = upload(api, "sft", files[0])
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["record_count"]) == ("1.0", 40)
    assert first.json()["gate"]["level"] == "quick" and first.json()["gate"]["approved_records"] == 40
    assert first.json()["operation"]["files"][0]["file"] == "b1.jsonl"
    second = upload(api, "sft", files[1], description="syllo")
    assert (second.json()["version"], second.json()["record_count"]) == ("1.1", 50)

    auth = api.auth("read")
    assert [d["name"] for d in httpx.get(api.url + "/v1/datasets", headers=auth).json()] == ["sft"]
    assert httpx.get(api.url + "/v1/datasets/sft", headers=auth).json()["current"]["version"] == "1.1"
    assert [v["version"] for v in httpx.get(api.url + "/v1/datasets/sft/versions", headers=auth).json()] == ["1.0", "1.1"]
    diff = httpx.get(api.url + "/v1/datasets/sft/diff", params={"old": "1.0", "new": "1.1"}, headers=auth).json()
    assert (diff["added"], diff["removed"]) == (10, 0)

    stored = list(DatasetRegistry(api.home).records("sft"))
    down = httpx.get(api.url + "/v1/datasets/sft/export", headers=auth)
    assert down.status_code == 200 and down.headers["x-tdm-records"] == "50"
    assert 'filename="sft-1.1.jsonl"' in down.headers["content-disposition"]
    assert [json.loads(line) for line in down.text.splitlines()] == stored
    old = httpx.get(api.url + "/v1/datasets/sft/export", params={"version": "1.0"}, headers=auth)
    assert len(old.text.splitlines()) == 40

    parquet = httpx.get(api.url + "/v1/datasets/sft/export", params={"format": "parquet"}, headers=auth)
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    again = httpx.post(api.url + "/v1/datasets/copy/import", files={"file": ("sft.parquet", io.BytesIO(parquet.content))},
                       data={"gate": "false"}, headers=api.auth("write"))  # fmt: skip
    assert again.status_code == 201 and again.json()["record_count"] == 50 and again.json()["gate"] is None
    assert list(DatasetRegistry(api.home).records("copy")) == stored


def test_errors_are_4xx_with_the_cli_messages(api, files):
    auth = api.auth("read")
    missing = httpx.get(api.url + "/v1/datasets/nope", headers=auth)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    bad_name = httpx.get(api.url + "/v1/datasets/a..b/versions", headers=auth)
    assert bad_name.status_code == 422 and NAME_RULE in bad_name.json()["detail"]
    bad_version = httpx.get(api.url + "/v1/datasets/sft/diff", params={"old": "01.0", "new": "1.1"}, headers=auth)
    assert bad_version.status_code == 422 and VERSION_RULE in bad_version.json()["detail"]
    assert httpx.get(api.url + "/v1/datasets/sft/export", params={"version": "9.9"}, headers=auth).status_code == 404
    assert httpx.get(api.url + "/v1/datasets/sft/export", params={"format": "hf"}, headers=auth).status_code == 422

    twice = upload(api, "sft", files[1])
    assert twice.status_code == 409 and "is already in sft" in twice.json()["detail"]
    pickled = upload(api, "sft", files[1], filename="b2.pkl")
    assert pickled.status_code == 422 and "a pickle is never imported over the API" in pickled.json()["detail"]
    nameless = upload(api, "sft", files[1], filename="b2")
    assert nameless.status_code == 422 and "none given and cannot tell the format" in nameless.json()["detail"]
    junk = httpx.post(api.url + "/v1/datasets/sft/import", files={"file": ("junk.jsonl", b"not json\n{also not\n")},
                      headers=api.auth("write"))  # fmt: skip
    assert junk.status_code == 422 and "no record could be read: nothing added" in junk.json()["detail"]
    assert "rejected 2 of 2 records" in junk.json()["detail"]
    no_file = httpx.post(api.url + "/v1/datasets/sft/import", headers=api.auth("write"))
    assert no_file.status_code == 422 and no_file.json()["detail"][0]["loc"] == ["body", "file"]

    big = b"".join(json.dumps({"prompt": "p" * 1000, "completion": "c"}).encode() + b"\n" for _ in range(LIMIT // 1000 + 10))
    too_big = httpx.post(api.url + "/v1/datasets/sft/import", files={"file": ("big.jsonl", big)}, headers=api.auth("write"))
    assert too_big.status_code == 413 and f"the limit is {LIMIT} bytes" in too_big.json()["detail"]

    current = httpx.delete(api.url + "/v1/datasets/sft", params={"version": "1.1"}, headers=api.auth("delete"))
    assert current.status_code == 409 and current.json()["detail"].endswith("add force=true to delete it anyway")
    old = httpx.delete(api.url + "/v1/datasets/sft", params={"version": "1.1", "force": "true"}, headers=api.auth("delete"))
    assert old.json() == {"deleted": "sft 1.1"}
    assert httpx.delete(api.url + "/v1/datasets/copy", params={"force": "true"}, headers=api.auth("delete")).json() == {"deleted": "copy"}
    assert [d["name"] for d in httpx.get(api.url + "/v1/datasets", headers=auth).json()] == ["sft"]


def test_stats_and_queue(api):
    auth = api.auth("read")
    stats = httpx.get(api.url + "/v1/stats", headers=auth).json()
    assert stats["batches"] == 0 and stats["total_generated"] == 0
    queue = httpx.get(api.url + "/v1/queue", headers=auth).json()
    assert queue == {"depth": {"high": 0, "normal": 0, "low": 0}, "total": 0, "files": []}
    (api.home.queue_dir("high") / "b.jsonl").write_text('{"x": 1}\n')
    assert httpx.get(api.url + "/v1/queue", headers=auth).json()["depth"]["high"] == 1
    assert len(httpx.get(api.url + "/v1/stats/daily", params={"days": 3}, headers=auth).json()) == 3
    assert httpx.get(api.url + "/v1/stats/daily", params={"days": 0}, headers=auth).status_code == 422


def test_import_salvages_by_default_and_the_form_field_turns_it_off(api, tmp_path):
    records = get_generator("binary").generate(2, 40, 7)
    path = tmp_path / "with_copies.jsonl"
    atomic_write_jsonl(path, records + records[:4])  # 4 of 44 exact copies: the batch fails its diversity check
    kept = upload(api, "salvaged", path, level="standard")
    assert kept.status_code == 201, kept.text
    gate = kept.json()["gate"]
    assert (kept.json()["record_count"], gate["batch_approved"], gate["salvaged_records"], gate["rejected_records"]) == (40, False, 40, 4)
    refused = upload(api, "not_salvaged", path, level="standard", salvage="false")
    assert refused.status_code == 422 and "no record passed the gate: nothing added" in refused.json()["detail"]
