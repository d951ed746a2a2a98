"""``tdm checkpoints push/pull/remote list``: the trainer box pushes, the serving box pulls
(and deploys), against a real fake-gcs-server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from tdm_dagster.home import TdmHome
from tdm_dagster.serving.deploy import current_deployment
from tdm_dagster.storage.checkpoints import publish
from tdm_dagster.storage.remote import Remote
from tdm_dagster.config.sections import StorageConfig
from tdm_dagster.training.checkpoints import list_checkpoints, save_checkpoint
from tests.support.dagster_processes import free_port
from tests.support.object_stores import PAUSED_PUSH, REPO, remote_files, run_tdm, use

RUN = "ckpt_20260101_120000"


class TinyModel:
    """Writes what a Hugging Face checkpoint holds (config, weights, tokenizer) as plain files."""

    def __init__(self, weights: bytes) -> None:
        self.weights = weights

    def save_pretrained(self, folder: str) -> None:
        Path(folder, "config.json").write_text(json.dumps({"model_type": "llama"}))
        Path(folder, "model.safetensors").write_bytes(self.weights)
        Path(folder, "tokenizer").mkdir()
        Path(folder, "tokenizer", "tokenizer.json").write_text(json.dumps({"vocab": list(range(2000))}))


def checkpoint(home: TdmHome, step: int, weights: bytes):
    return save_checkpoint(home.training_dir / RUN, step, TinyModel(weights), metrics={"loss": 1.0 / step})


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tdm(*args: str, ok: bool = True):
    return run_tdm("checkpoints", *args, ok=ok)


def test_the_serving_box_pulls_what_the_trainer_box_pushed(gcs_server, home, monkeypatch, tmp_path):
    """On GCS here; the S3 path is the same code, and the dataset tests run it on both."""
    url = use(gcs_server, monkeypatch)
    first = checkpoint(home, 1, os.urandom(300_000))
    pushed = json.loads(tdm("push", RUN, "--remote", url, "--json").stdout)
    assert (pushed["moved"], pushed["objects"]) == (["checkpoint-1"], 4)
    second = checkpoint(home, 2, os.urandom(300_000))  # same config and tokenizer, new weights and metadata
    pushed = json.loads(tdm("push", RUN, "--remote", url, "--json").stdout)
    assert (pushed["moved"], pushed["objects"], pushed["objects_present"]) == (["checkpoint-2"], 2, 2)
    assert tdm("remote", "list", "--remote", url).stdout.split() == [RUN, "checkpoint-1,", "checkpoint-2"]

    serving = TdmHome(tmp_path / "serving-box").ensure()
    monkeypatch.setenv("TDM_HOME", str(serving.root))
    pulled = json.loads(tdm("pull", RUN, "--remote", url, "--json").stdout)
    assert pulled["moved"] == ["checkpoint-2"] and pulled["path"] == str(serving.training_dir / RUN / "checkpoints" / "checkpoint-2")
    assert files(Path(pulled["path"])) == files(second.path)
    tdm("pull", RUN, "--name", "checkpoint-1", "--remote", url)
    assert [c.name for c in list_checkpoints(serving.training_dir / RUN)] == ["checkpoint-1", "checkpoint-2"]
    assert files(serving.training_dir / RUN / "checkpoints" / "checkpoint-1") == files(first.path)
    assert "already there: checkpoint-2" in tdm("pull", RUN, "--remote", url).stdout


def test_a_corrupt_file_is_refused_and_a_later_pull_resumes(gcs_server, home, monkeypatch, tmp_path):
    url = use(gcs_server, monkeypatch)
    made = checkpoint(home, 7, os.urandom(400_000))
    tdm("push", RUN, "--remote", url)
    manifest = Remote(url).read_manifest(f"checkpoints/{RUN}/checkpoint-7.json")
    weights_sha = manifest["files"]["model.safetensors"][0]
    key = f"{url.split('://', 1)[1]}/objects/{weights_sha[:2]}/{weights_sha}"
    client = gcs_server.filesystem()
    good = client.cat_file(key)
    client.pipe_file(key, good[:-1] + bytes([good[-1] ^ 1]))

    serving = TdmHome(tmp_path / "serving-box").ensure()
    monkeypatch.setenv("TDM_HOME", str(serving.root))
    refused = tdm("pull", RUN, "--remote", url, ok=False)
    assert refused.exit_code == 1 and f"{url}/objects/{weights_sha[:2]}/{weights_sha} is corrupt" in refused.output
    assert list_checkpoints(serving.training_dir / RUN) == []  # nothing half-pulled is offered

    client.pipe_file(key, good)
    resumed = json.loads(tdm("pull", RUN, "--remote", url, "--json").stdout)
    assert resumed["objects"] + resumed["objects_present"] == 4 and resumed["objects_present"] >= 1
    assert files(serving.training_dir / RUN / "checkpoints" / "checkpoint-7") == files(made.path)
    assert not list((serving.training_dir / RUN).glob(".*.tmp"))


def test_a_manifest_naming_paths_outside_the_checkpoint_is_refused(gcs_server, home, monkeypatch, tmp_path):
    url = use(gcs_server, monkeypatch)
    checkpoint(home, 3, b"weights")
    tdm("push", RUN, "--remote", url)
    remote = Remote(url)
    body = remote.read_manifest(f"checkpoints/{RUN}/checkpoint-3.json")
    body["name"] = "checkpoint-4"
    body["files"]["../../../escaped.txt"] = body["files"]["config.json"]
    remote.create_manifest(f"checkpoints/{RUN}/checkpoint-4.json", body)  # a sealed but hostile manifest
    monkeypatch.setenv("TDM_HOME", str(tmp_path / "serving-box"))
    refused = tdm("pull", RUN, "--name", "checkpoint-4", "--remote", url, ok=False)
    assert refused.exit_code == 1 and "is not a checkpoint manifest" in refused.output
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_checkpoint_is_listed_only_once_complete(gcs_server, home, monkeypatch, tmp_path):
    url = use(gcs_server, monkeypatch)
    checkpoint(home, 5, os.urandom(100_000))
    go = tmp_path / "go"
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSED_PUSH, "checkpoints", "push", RUN, "--remote", url], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "GO_FILE": str(go)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert any(line.startswith("one object stored") for line in process.stderr)
    assert "no checkpoints on the remote" in tdm("remote", "list", "--remote", url).stdout
    assert not [p for p in remote_files(gcs_server, url) if p.startswith("checkpoints/")]
    go.touch()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert tdm("remote", "list", "--remote", url).stdout.split() == [RUN, "checkpoint-5"]


def test_pull_deployed_deploys_what_the_trainer_box_deployed(gcs_server, home, monkeypatch, tmp_path):
    url = use(gcs_server, monkeypatch)
    checkpoint(home, 9, os.urandom(50_000))
    line = publish(home, StorageConfig(remote=url, push_checkpoints=True), RUN, "checkpoint-9", deployed_score=0.75, deploying=True)
    assert line.startswith(f"pushed {RUN}/checkpoint-9 to {url}") and "recorded as deployed" in line

    serving = TdmHome(tmp_path / "serving-box").ensure()
    monkeypatch.setenv("TDM_HOME", str(serving.root))
    monkeypatch.setenv("TDM_SERVING_PORT", str(free_port()))  # no server answers: deployed, not verified
    assert f"deployed: {RUN}/checkpoint-9 (score 0.75)" in tdm("remote", "list", "--remote", url).stdout
    result = json.loads(tdm("pull", "--deployed", "--remote", url, "--json").stdout)
    assert result["deploy"]["deployed"] is True
    assert current_deployment(serving.serving_dir) == "checkpoint-9"
    assert files(serving.serving_dir / "checkpoint-9") == files(home.training_dir / RUN / "checkpoints" / "checkpoint-9")
    assert tdm("pull", "--remote", url, ok=False).exit_code == 2  # neither RUN nor --deployed


def test_the_trainer_pushes_when_configured_and_a_missing_bucket_is_only_a_warning(gcs_server, home, monkeypatch):
    import dagster as dg

    from tdm_dagster.assets.train import _publish
    from tdm_dagster.resources import TdmHomeResource

    url = use(gcs_server, monkeypatch)
    made = checkpoint(home, 11, os.urandom(20_000))
    tdm_resource = TdmHomeResource(root=str(home.root))
    assert _publish(dg.build_asset_context(), tdm_resource, RUN, made.path) == {}  # off by default
    home.config_path.write_text(f"storage:\n  remote: {url}\n  push_checkpoints: true\n")
    metadata = _publish(dg.build_asset_context(), tdm_resource, RUN, made.path, deployed_score=0.5)
    assert metadata["remote"].startswith(f"pushed {RUN}/checkpoint-11 to {url}") and "deployed" in metadata["remote"]
    assert Remote(url).read_manifest("deployments/current.json")["name"] == "checkpoint-11"

    home.config_path.write_text("storage:\n  remote: gs://no-such-bucket/team\n  push_checkpoints: true\n")
    metadata = _publish(dg.build_asset_context(), tdm_resource, RUN, made.path)
    assert metadata["remote"].startswith("not pushed: gs://no-such-bucket/team: ")
