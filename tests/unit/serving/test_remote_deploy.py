"""Remote deployment end to end against a real sshd on 127.0.0.1: rsync over ssh
(``--link-dest`` against the previous deployment), the pointer switched on the "remote"
side, a real ``tdm serve`` there reloaded and verified, a broken checkpoint switched
back, rollback through the CLI, and ``serving.remote_host`` parsed as documented."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.home import TdmHome
from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.serving.deploy import current_deployment, deploy, load_deployments, rollback
from tdm_dagster.serving.remote import RemoteHostError, RemoteTarget, parse_remote_host
from tests.support.http_servers import refused_port
from tests.support.sshd_server import ssh_server
from tests.support.tdm_serve import tdm_serve
from tests.unit.serving.helpers import ADMIN_TOKEN, chat, cli


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    with ssh_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def remote_box(ssh, tmp_path_factory):
    """The "remote" serving folder and a real ``tdm serve`` on it."""
    folder = tmp_path_factory.mktemp("remote-box")
    remote_dir = folder / "remote-serving"
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
    assert load_deployments(home.serving_dir, remote)["active"] == ["ckpt-a"]
    assert load_deployments(home.serving_dir)["active"] == []  # nothing deployed here

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
    assert load_deployments(home.serving_dir, remote)["active"] == []


@pytest.mark.parametrize("value, words", [
    ("gpu-box", "no ':/path' part"),
    ("me@gpu-box:srv/serving", "is not absolute"),
    (":/srv/serving", "is not a host"),
    ("-oProxyCommand=touch_x:/srv", "contains '='"),
    ("-oBatchMode:/srv", "is not a host"),
    ("me@gpu-box:/srv/../etc", ". or .."),
    ("root@host:/srv/x$(touch pwned)", "the path '/srv/x$(touch pwned)' contains '$': shell metacharacters"),
    ("me@gpu-box:/srv/a;touch b", "contains ';'"),
    ("me@gpu-box:/srv/`id`", "contains '`'"),
    ("me@gpu-box:/srv/my serving", "contains ' '"),
    ("me@gpu-box:/srv/it's", "contains \"'\""),
    ("me@gpu-box:/srv/a\nb", "contains '\\n'"),
    ("$(id)@gpu-box:/srv", "the host '$(id)@gpu-box' contains '$'"),
    ("me@gpu box:/srv", "contains ' '"),
])  # fmt: skip
def test_malformed_remote_host_is_a_config_error(tmp_path, value, words):
    with pytest.raises(RemoteHostError, match="expected \\[user@\\]host:/absolute/path"):
        parse_remote_host(value)
    home = TdmHome(tmp_path / "home").ensure()
    home.config_path.write_text("serving:\n  remote_host: %s\n" % json.dumps(value))
    with pytest.raises(ConfigError) as error:
        load_config(home)
    assert "serving.remote_host" in str(error.value) and words in str(error.value)


def test_a_shell_never_sees_the_remote_path(home, ssh, tmp_path, checkpoints, monkeypatch):
    """rsync before 3.2.4 handed remote paths to the remote shell; ``RSYNC_OLD_ARGS=1``
    makes this rsync do the same. A path with ``$(touch ...)`` (built directly, past the
    config check) still reaches the host literally: rsync runs with --protect-args."""
    monkeypatch.setenv("RSYNC_OLD_ARGS", "1")
    box = tmp_path / "box"
    box.mkdir()
    remote = RemoteTarget(ssh.host, f"{box}/x$(touch {box}/pwned)", str(ssh.client_config))
    first = deploy(checkpoints["a"], home.serving_dir, score=0.5, server_url=None, remote=remote)
    second = deploy(checkpoints["b"], home.serving_dir, score=0.7, server_url=None, remote=remote)  # with --link-dest
    assert not (box / "pwned").exists()
    assert first.deployed and second.deployed, (first.reason, second.reason)
    literal = box / f"x$(touch {box}" / "pwned)"
    assert (literal / "current").read_text() == "ckpt-b\n" and (literal / "ckpt-a" / "config.json").is_file()


def test_tdm_deploy_refuses_an_unsafe_remote_host_before_connecting(home, ssh, tmp_path, checkpoints):
    box = tmp_path / "box"
    box.mkdir()
    home.config_path.write_text(f"serving:\n  remote_host: '{ssh.host}:{box}/x$(touch {box}/pwned)'\n"
                                f"  ssh_config: '{ssh.client_config}'\n")  # fmt: skip
    code, out = cli("deploy", str(checkpoints["a"]))
    assert code == 2 and "serving.remote_host" in out and "contains '$'" in out and "Traceback" not in out, out
    assert list(box.iterdir()) == [] and not home.deployments_file.exists()


def test_rsync_missing_fails_the_deploy_with_exit_1(home, ssh, tmp_path, checkpoints, monkeypatch):
    """A PATH with ssh but no rsync: not deployed, exit 1, the JSON says why."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").symlink_to(shutil.which("ssh"))
    monkeypatch.setenv("PATH", str(bin_dir))
    with refused_port() as no_server:
        home.config_path.write_text(f"serving:\n  port: {no_server.rsplit(':', 1)[1]}\n  remote_host: '{ssh.host}:{tmp_path}/box'\n"
                                    f"  ssh_config: '{ssh.client_config}'\n")  # fmt: skip
        code, out = cli("deploy", str(checkpoints["a"]), "--json")
    data = json.loads(out)
    assert code == 1 and data["deployed"] is False and data["outcome"] == "failed", out
    assert data["reason"].startswith("copy failed: rsync is not installed here (not on PATH)")
    assert not (tmp_path / "box").exists()


def test_history_is_kept_per_target(home, ssh, tmp_path, checkpoints):
    """Deploy here, then to a host, then here again: each rollback works against its own
    target's deployments."""
    box = tmp_path / "box"
    with refused_port() as no_server:
        port = no_server.rsplit(":", 1)[1]
        local = f"serving:\n  port: {port}\n"
        remote = f"{local}  remote_host: '{ssh.host}:{box}'\n  ssh_config: '{ssh.client_config}'\n"
        home.config_path.write_text(local)
        for key, score in (("a", 0.5), ("b", 0.6)):
            assert deploy(checkpoints[key], home.serving_dir, score=score, server_url=None).deployed
        home.config_path.write_text(remote)
        assert cli("deploy", str(checkpoints["c"]), "--force")[0] == 0
        code, out = cli("deploy", "--rollback")  # the host has one deployment: nothing to go back to
        assert code == 1 and f"no previous deployment to roll back to on {ssh.host}:{box}" in out, out
        assert (box / "current").read_text() == "ckpt-c\n"
        listed = json.loads(cli("deployments", "--json")[1])
        assert [r["id"] for r in listed["deployments"]] == ["ckpt-c", None]
        assert listed["current"] == "ckpt-c" and listed["other_targets"] == ["local"]

        home.config_path.write_text(local)
        code, out = cli("deploy", "--rollback")
        assert code == 0 and "rolled back from ckpt-b to ckpt-a" in out, out
        assert current_deployment(home.serving_dir) == "ckpt-a" and (box / "current").read_text() == "ckpt-c\n"
    assert json.loads(home.deployments_file.read_text())["version"] == 2


def test_remote_host_forms():
    assert parse_remote_host("gpu-box:/srv/serving/").host == "gpu-box"
    target = parse_remote_host("me@[::1]:/srv/serving", "~/.ssh/tdm")
    assert (target.host, target.path, target.ssh_config) == ("me@[::1]", "/srv/serving", "~/.ssh/tdm")
    assert target.rsync("/c", "x", link_dest=None)[-1] == "me@[::1]:/srv/serving/x/"
    assert target.ssh("true")[-2:] == ["me@::1", "true"]
