"""``storage.auto_push`` against a real moto S3 server on 127.0.0.1: each dataset
operation that commits a version (the CLI's add, the registry's append)
pushes it; off, nothing is pushed; a remote that is down leaves the version committed
here, with a warning, and a later ``tdm datasets push`` sends it."""

from __future__ import annotations

import json
import logging

import pytest

from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.datasets import DatasetRegistry
from tests.support.object_stores import SECRET, remote_files, run_tdm, use


def chats(tag: str, count: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"{tag} question {i}"}, {"role": "assistant", "content": f"{tag} answer {i}"}]} for i in range(count)]


def manifests(server, url: str) -> list[str]:
    return sorted(path for path in remote_files(server, url) if path.startswith("datasets/") and path.endswith(".json"))


@pytest.fixture
def s3_remote(s3_server, monkeypatch, home):
    return s3_server, use(s3_server, monkeypatch)


def test_each_operation_pushes_its_version_when_auto_push_is_on(home, s3_remote, tmp_path):
    server, url = s3_remote
    home.config_path.write_text(f"storage:\n  remote: {url}\n  auto_push: true\n", encoding="utf-8")
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in chats("a", 5)), encoding="utf-8")
    run_tdm("datasets", "create", "team")
    run_tdm("datasets", "add", "team", str(data))
    assert manifests(server, url) == ["datasets/team/1.0.json"]
    DatasetRegistry(home).append("team", chats("b", 3))
    assert manifests(server, url) == ["datasets/team/1.0.json", "datasets/team/1.1.json"]
    pulled = run_tdm("datasets", "remote", "list", "--json").stdout
    assert json.loads(pulled) and "1.1" in pulled


def test_nothing_is_pushed_when_auto_push_is_off(home, s3_remote):
    server, url = s3_remote
    home.config_path.write_text(f"storage:\n  remote: {url}\n", encoding="utf-8")
    registry = DatasetRegistry(home)
    registry.create("quiet")
    registry.append("quiet", chats("q", 2))
    assert manifests(server, url) == []


def test_a_remote_that_is_down_leaves_the_version_committed_and_says_so(home, s3_server, monkeypatch, caplog):
    url = use(s3_server, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    home.config_path.write_text(f"storage:\n  remote: {url}\n  auto_push: true\n  endpoint_url: http://127.0.0.1:9\n", encoding="utf-8")
    registry = DatasetRegistry(home)
    registry.create("offline")
    with caplog.at_level(logging.WARNING, logger="tdm_dagster.datasets.auto_push"):
        info = registry.append("offline", chats("o", 2))
    assert [v.version for v in registry.versions("offline")] == [info.version]
    assert f"dataset offline {info.version} is committed here but storage.auto_push to" in caplog.text
    assert "`tdm datasets push offline` sends it later" in caplog.text and SECRET not in caplog.text
    home.config_path.write_text(f"storage:\n  remote: {url}\n", encoding="utf-8")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)
    run_tdm("datasets", "push", "offline")
    assert manifests(s3_server, url) == [f"datasets/offline/{info.version}.json"]


def test_auto_push_must_be_a_boolean(home):
    home.config_path.write_text("storage:\n  auto_push: sometimes\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="storage.auto_push"):
        load_config(home, environ={})
