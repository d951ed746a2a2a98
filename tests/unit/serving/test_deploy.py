"""Deployment: copy a checkpoint into the serving folder, switch the pointer, reload a
running server with zero failed requests, refuse broken or worse checkpoints, roll back."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx

from tdm_dagster.serving import DEPLOYMENTS_FILE, POINTER_FILE
from tdm_dagster.serving.deploy import (
    current_deployment,
    deploy,
    load_deployments,
    rollback,
    validate_checkpoint,
)
from tdm_dagster.serving.remote import RemoteTarget
from tdm_dagster.serving.server import create_app
from tests.support.http_servers import running_server
from tests.unit.serving.helpers import admin_auth, chat


def test_deploy_under_load_zero_failures_then_new_checkpoint(serving, checkpoints):
    with running_server(create_app(serving)) as base_url:
        results: list[tuple[float, int, str | None]] = []
        stop = threading.Event()

        def load():
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    try:
                        r = client.post(base_url + "/v1/chat/completions",
                                        json={"messages": [{"role": "user", "content": "go"}],
                                              "max_tokens": 3, "temperature": 0})
                        results.append((time.monotonic(), r.status_code, r.json().get("model")))
                    except httpx.HTTPError as exc:
                        results.append((time.monotonic(), -1, repr(exc)))
                    time.sleep(0.02)

        workers = [threading.Thread(target=load) for _ in range(2)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)
            result = deploy(checkpoints["b"], serving, score=0.7, server_url=base_url)
            deployed_at = time.monotonic()
            time.sleep(0.5)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)

        assert result.deployed, result.reason
        assert result.previous == "ckpt-a"
        assert result.name == "ckpt-b"
        assert result.latency_s > 0
        failures = [r for r in results if r[1] != 200]
        assert failures == []
        before = [r for r in results if r[0] < deployed_at - result.latency_s]
        after = [r for r in results if r[0] > deployed_at]
        assert before and all(r[2] == "ckpt-a" for r in before)
        assert after and all(r[2] == "ckpt-b" for r in after)
        assert current_deployment(serving) == "ckpt-b"
        assert httpx.get(base_url + "/health").json()["model"] == "ckpt-b"

    record = load_deployments(serving)
    assert record["active"] == ["ckpt-a", "ckpt-b"]
    last = record["history"][-1]
    assert last["outcome"] == "deployed" and last["name"] == "ckpt-b" and last["score"] == 0.7
    assert last["latency_s"] == result.latency_s and last["time"]
    assert last["checkpoint"] == str(checkpoints["b"].resolve())


def test_broken_checkpoint_refused_previous_keeps_serving(serving, checkpoints, tmp_path):
    with running_server(create_app(serving)) as base_url:
        result = deploy(checkpoints["corrupt"], serving, score=0.9, server_url=base_url)
        assert not result.deployed
        assert "ckpt-corrupt-weights" in result.reason and "switched back to ckpt-a" in result.reason
        assert current_deployment(serving) == "ckpt-a"
        assert not (serving / "ckpt-corrupt-weights").exists()
        assert chat(base_url).json()["model"] == "ckpt-a"
        assert load_deployments(serving)["history"][-1]["outcome"] == "failed"

        # a folder with a corrupt config / no weights is refused before anything is touched
        bad_config = tmp_path / "bad-config"
        shutil.copytree(checkpoints["a"], bad_config)
        (bad_config / "config.json").write_text("{not json")
        no_weights = tmp_path / "no-weights"
        shutil.copytree(checkpoints["a"], no_weights)
        for weights in no_weights.glob("*.safetensors"):
            weights.unlink()
        for folder, words in ((bad_config, "not valid JSON"), (no_weights, "no weights")):
            refused = deploy(folder, serving, score=0.9, server_url=base_url)
            assert not refused.deployed and words in refused.reason
            assert current_deployment(serving) == "ckpt-a"

        # someone points `current` at a broken folder by hand: the server keeps the old
        # model and reports the error in /health
        shutil.copytree(checkpoints["corrupt"], serving / "broken")
        (serving / POINTER_FILE).write_text("broken\n")
        response = chat(base_url)
        assert response.status_code == 200 and response.json()["model"] == "ckpt-a"
        health = httpx.get(base_url + "/health").json()
        assert health["model"] == "ckpt-a"
        assert health["last_error"]["checkpoint"] == "broken"
        assert health["last_error"]["error"]
        assert httpx.post(base_url + "/admin/reload", headers=admin_auth()).status_code == 409


def test_worse_score_refused_unless_forced_and_rollback(serving, checkpoints):
    worse = deploy(checkpoints["b"], serving, score=0.4, server_url=None)
    assert not worse.deployed and "lower" in worse.reason
    assert current_deployment(serving) == "ckpt-a"
    assert load_deployments(serving)["history"][-1]["outcome"] == "declined" == worse.outcome

    unscored = deploy(checkpoints["b"], serving, score=None, server_url=None)
    assert not unscored.deployed

    with running_server(create_app(serving)) as base_url:
        forced = deploy(checkpoints["b"], serving, score=0.4, server_url=base_url, force=True)
        assert forced.deployed, forced.reason
        assert chat(base_url).json()["model"] == "ckpt-b"

        # without server_url the server notices the pointer change on its next request
        back = rollback(serving)
        assert back.deployed, back.reason
        assert back.name == "ckpt-a" and back.previous == "ckpt-b"
        assert current_deployment(serving) == "ckpt-a"
        assert chat(base_url).json()["model"] == "ckpt-a"

        # nothing before ckpt-a
        nothing = rollback(serving, server_url=base_url)
        assert not nothing.deployed and "no previous" in nothing.reason

    record = json.loads((serving / DEPLOYMENTS_FILE).read_text())
    assert list(record["targets"]) == ["local"]
    outcomes = [entry["outcome"] for entry in record["targets"]["local"]["history"]]
    assert outcomes == ["deployed", "declined", "declined", "deployed", "rollback", "refused"]
    assert all("latency_s" in entry for entry in record["targets"]["local"]["history"])


def test_validate_checkpoint(checkpoints, tmp_path):
    assert validate_checkpoint(checkpoints["a"]) is None
    assert "no config.json" in validate_checkpoint(tmp_path)
    assert "not a folder" in validate_checkpoint(tmp_path / "missing")


def test_remote_command_lines():
    target = RemoteTarget("gpu-box", "/srv/serving")
    ssh = ["ssh", "-o", "BatchMode=yes"]
    assert target.rsync("/data/ckpt-b/", ".ckpt-b.tmp-1", link_dest=None) == [
        "rsync", "--protect-args", "-rlp", "--checksum", "--delete", "--mkpath", "-e", "ssh -o BatchMode=yes",
        "/data/ckpt-b/", "gpu-box:/srv/serving/.ckpt-b.tmp-1/",
    ]
    # --protect-args: rsync sends the paths in its protocol, so they are not shell-quoted
    spaced = RemoteTarget("me@gpu-box", "/srv/my serving", ssh_config="/etc/tdm ssh.conf")
    argv = spaced.rsync("/data/my ckpt", "x", link_dest="ckpt-a")
    assert argv[7] == "ssh -o BatchMode=yes -F '/etc/tdm ssh.conf'"
    assert argv[8:] == ["--link-dest=/srv/my serving/ckpt-a", "/data/my ckpt/", "me@gpu-box:/srv/my serving/x/"]
    finish = target.finish(".ckpt-b.tmp-1", "ckpt-b")
    assert finish == [*ssh, "gpu-box",
                      "test ! -e /srv/serving/ckpt-b && mv /srv/serving/.ckpt-b.tmp-1 /srv/serving/ckpt-b"]
    pointer = target.switch_pointer("ckpt-b")
    assert pointer[:4] == [*ssh, "gpu-box"]
    assert pointer[4] == ("printf '%s\\n' ckpt-b > /srv/serving/.current.tmp && sync && "
                          "mv -f /srv/serving/.current.tmp /srv/serving/current")
    # the ssh scripts are parsed by the remote shell: their paths are quoted
    assert spaced.remove("b")[-1] == "rm -rf '/srv/my serving/b'"
    assert spaced.ssh_argv()[-2:] == ["-F", "/etc/tdm ssh.conf"]
