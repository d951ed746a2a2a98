"""Remote deployment end to end against a real sshd on 127.0.0.1: rsync over ssh
(``--link-dest`` against the previous deployment), the pointer switched on the "remote"
side, a real ``tdm serve`` there reloaded and verified, a broken checkpoint switched
back, rollback through the CLI, and ``serving.remote_host`` parsed as documented."""

from __future__ import annotations

import json

import httpx
import pytest
from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.home import TdmHome
from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.serving.deploy import deploy, load_deployments, rollback
from tdm_dagster.serving.remote import RemoteHostError, parse_remote_host
from tests.support.sshd_server import ssh_server
from tests.support.tdm_serve import tdm_serve
from tests.unit.serving.helpers import ADMIN_TOKEN, chat, cli


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    with ssh_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def remote_box(ssh, tmp_path_factory):
    """The "remote" serving folder (a space in its path) and a real ``tdm serve`` on it."""
    folder = tmp_path_factory.mktemp("remote-box")
    remote_dir = folder / "remote serving"
    remote_dir.mkdir()
    with tdm_serve(remote_dir, folder, TDM_SERVING_ADMIN_TOKEN=ADMIN_TOKEN) as url:
        yield remote_dir, url


def test_remote_deploy_switch_verify_fail_back_and_roll_back(home, ssh, remote_box, checkpoints, monkeypatch):
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)  # `home` cleared every TDM_ variable
    remote_dir, url = remote_box
    port = int(url.rsplit(":", 1)[1])
    home.config_path.write_text(
        "serving:\n  host: 127.0.0.1\n  port: %d\n  remote_host: '%s:%s'\n  ssh_config: '%s'\n"
        % (port, ssh.host, remote_dir, ssh.client_config)
    )
    settings = load_config(home).serving
    remote = parse_remote_host(settings.remote_host, settings.ssh_config)
    assert (remote.host, remote.path) == (ssh.host, str(remote_dir))

    first = deploy(checkpoints["a"], home.serving_dir, score=0.5, server_url=url, remote=remote)
    assert first.deployed, first.reason
    assert (remote_dir / "current").read_text() == "ckpt-a\n"
    assert httpx.get(url + "/health").json()["model"] == "ckpt-a"
    assert not (home.serving_dir / "ckpt-a").exists()  # the files went to the remote folder only

    second = deploy(checkpoints["b"], home.serving_dir, score=0.7, server_url=url, remote=remote)
    assert second.deployed and second.previous == "ckpt-a", second.reason
    assert chat(url).json()["model"] == "ckpt-b"
    # --link-dest: files equal to the previous deployment's are hard links to them, not copies
    same = (remote_dir / "ckpt-a" / "tokenizer.json").stat(), (remote_dir / "ckpt-b" / "tokenizer.json").stat()
    assert same[0].st_ino == same[1].st_ino
    weights = (remote_dir / "ckpt-a" / "model.safetensors").stat(), (remote_dir / "ckpt-b" / "model.safetensors").stat()
    assert weights[0].st_ino != weights[1].st_ino
    assert not [p.name for p in remote_dir.iterdir() if p.name.startswith(".")]  # no temp folders left

    # a checkpoint the server cannot load: pointer switched back, its folder removed
    broken = deploy(checkpoints["corrupt"], home.serving_dir, score=0.9, server_url=url, remote=remote)
    assert not broken.deployed and "switched back to ckpt-b" in broken.reason
    assert (remote_dir / "current").read_text() == "ckpt-b\n"
    assert not (remote_dir / "ckpt-corrupt-weights").exists()
    assert chat(url).json()["model"] == "ckpt-b"

    # history and rollback through the CLI, which reads serving.remote_host from config
    code, out = cli("deployments", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["current"] == "ckpt-b" and listed["remote_host"] == f"{ssh.host}:{remote_dir}"
    assert [(r["id"], r["outcome"], r["current"]) for r in listed["deployments"]] == [
        ("ckpt-a", "deployed", False), ("ckpt-b", "deployed", True), ("ckpt-corrupt-weights", "failed", False)]
    code, out = cli("deploy", "--rollback")
    assert code == 0 and "rolled back from ckpt-b to ckpt-a" in out, out
    assert (remote_dir / "current").read_text() == "ckpt-a\n"
    assert httpx.get(url + "/health").json()["model"] == "ckpt-a"
    assert load_deployments(home.serving_dir)["active"] == ["ckpt-a"]

    # forward again by id, then a rollback to a folder that is gone on the host
    assert rollback(home.serving_dir, url, target="ckpt-b", remote=remote).deployed
    assert chat(url).json()["model"] == "ckpt-b"
    ssh.run(f"rm -rf '{remote_dir}/ckpt-a'")
    gone = rollback(home.serving_dir, url, remote=remote)
    assert not gone.deployed and "ckpt-a is gone" in gone.reason
    assert (remote_dir / "current").read_text() == "ckpt-b\n"


def test_unreachable_host_fails_cleanly(home, ssh, tmp_path, checkpoints):
    """ssh cannot log in (a key the server does not know): the deploy fails, saying so,
    and nothing is recorded as deployed."""
    stranger = tmp_path / "stranger_config"
    stranger.write_text(ssh.client_config.read_text().replace("user_key", "host_key"))
    remote = parse_remote_host(f"{ssh.host}:{tmp_path}/elsewhere", str(stranger))
    result = deploy(checkpoints["a"], home.serving_dir, score=0.5, server_url=None, remote=remote)
    assert not result.deployed
    assert result.reason.startswith("copy failed: rsync failed") and "Permission denied" in result.reason
    assert not (tmp_path / "elsewhere").exists()
    assert load_deployments(home.serving_dir)["active"] == []


@pytest.mark.parametrize("value, words", [
    ("gpu-box", "no ':/path' part"),
    ("me@gpu-box:srv/serving", "is not absolute"),
    (":/srv/serving", "is not a host"),
    ("-oProxyCommand=touch_x:/srv", "is not a host"),
    ("me@gpu-box:/srv/../etc", ". or .."),
])  # fmt: skip
def test_malformed_remote_host_is_a_config_error(tmp_path, value, words):
    with pytest.raises(RemoteHostError, match="expected \\[user@\\]host:/absolute/path"):
        parse_remote_host(value)
    home = TdmHome(tmp_path / "home").ensure()
    home.config_path.write_text(f"serving:\n  remote_host: '{value}'\n")
    with pytest.raises(ConfigError) as error:
        load_config(home)
    assert "serving.remote_host" in str(error.value) and words in str(error.value)


def test_remote_host_forms():
    assert parse_remote_host("gpu-box:/srv/serving/").host == "gpu-box"
    target = parse_remote_host("me@[::1]:/srv/serving", "~/.ssh/tdm")
    assert (target.host, target.path, target.ssh_config) == ("me@[::1]", "/srv/serving", "~/.ssh/tdm")
    assert target.rsync("/c", "x", link_dest=None)[-1] == "me@[::1]:/srv/serving/x/"
    assert target.ssh("true")[-2:] == ["me@::1", "true"]
