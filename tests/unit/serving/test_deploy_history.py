"""Deployments here: hard links to the checkpoint (no copy), rollback to the previous
or a named deployment, ``tdm deployments`` and ``tdm deploy --rollback``, and which
checkpoint ``tdm deploy`` picks (the best, the one named, the newest with ``--force``)."""

from __future__ import annotations

import json
import shutil

from tdm_dagster.cli.deploy import EXIT_DECLINED
from tdm_dagster.serving.choice import choose_checkpoint
from tdm_dagster.serving.deploy import current_deployment, deploy, load_deployments
from tdm_dagster.training.checkpoints import save_checkpoint
from tests.support.http_servers import refused_port
from tests.unit.serving.helpers import cli


def test_a_deployment_is_hard_links_to_the_checkpoint(serving, checkpoints):
    for source in checkpoints["a"].iterdir():
        deployed = (serving / "ckpt-a" / source.name).stat()
        assert deployed.st_ino == source.stat().st_ino and deployed.st_nlink >= 2, source.name
    files = load_deployments(serving)["history"][-1]["files"]
    assert files == {"linked": len(list(checkpoints["a"].iterdir())), "copied": 0}
    assert not [p.name for p in serving.iterdir() if p.name.startswith(".") and p.name != ".deploy.lock"]


def test_history_and_rollback_through_thecli(home, checkpoints):
    with refused_port() as no_server:  # nothing to reload: the pointer alone moves
        home.config_path.write_text(f"serving:\n  port: {no_server.rsplit(':', 1)[1]}\n")
        for key, score in (("a", 0.5), ("b", 0.7), ("c", 0.9)):
            assert deploy(checkpoints[key], home.serving_dir, score=score, server_url=None).deployed
        assert not deploy(checkpoints["a"], home.serving_dir, score=0.1, server_url=None).deployed
        assert [e["name"] for e in load_deployments(home.serving_dir)["history"]][:3] == ["ckpt-a", "ckpt-b", "ckpt-c"]

        code, out = cli("deployments")
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0].split() == ["id", "outcome", "checkpoint", "when", "score", "latency_s"]
        marked = [line for line in lines[1:] if line.startswith("*")]
        assert len(marked) == 1 and "ckpt-c" in marked[0] and "0.9" in marked[0]
        assert lines[-1] == "current: ckpt-c"
        assert len(lines) == 1 + 4 + 1 and "declined" in lines[4]

        code, out = cli("deploy", "--rollback")
        assert code == 0 and "rolled back from ckpt-c to ckpt-b" in out, out
        assert current_deployment(home.serving_dir) == "ckpt-b"
        code, out = cli("deploy", "--rollback", "ckpt-a", "--json")
        assert code == 0 and json.loads(out)["name"] == "ckpt-a", out
        assert load_deployments(home.serving_dir)["active"] == ["ckpt-a"]
        code, out = cli("deploy", "--rollback", "ckpt-c")  # forward again, by id
        assert code == 0 and current_deployment(home.serving_dir) == "ckpt-c"
        assert load_deployments(home.serving_dir)["active"] == ["ckpt-a", "ckpt-c"]

        code, out = cli("deploy", "--rollback", "nope")
        assert code == 1 and "no deployment named 'nope'" in out and "Traceback" not in out
        code, out = cli("deploy", "--rollback", "ckpt-c")
        assert code == 1 and "already the current deployment" in out
        code, out = cli("deploy", "--rollback", "ckpt-a", "--force")
        assert code == 2 and "--rollback takes no CHECKPOINT and no --force" in out
        assert current_deployment(home.serving_dir) == "ckpt-c"

        listed = json.loads(cli("deployments", "--json")[1])
        assert listed["current"] == "ckpt-c"
        assert [r["outcome"] for r in listed["deployments"]].count("rollback") == 3
        rows = listed["deployments"]
        assert [r["outcome"] for r in rows[-3:]] == ["rollback", "refused", "refused"]
        # the rollback forward made ckpt-c current again: that row is marked, not the first deploy
        assert [n for n, r in enumerate(rows) if r["current"]] == [len(rows) - 3]


def test_which_checkpoint_deploy_picks(tmp_path):
    training = tmp_path / "training"
    history = [
        {"checkpoint": "/h/training/k1/checkpoints/checkpoint-8", "overall_accuracy": 0.6, "held_out_loss": 2.0},
        {"checkpoint": "/h/training/k2/checkpoints/checkpoint-8", "overall_accuracy": 0.8, "held_out_loss": 1.5},
        {"checkpoint": "/h/training/k3/checkpoints/checkpoint-8", "overall_accuracy": 0.4, "held_out_loss": 2.5},
    ]
    def choose(wanted, newest=False):
        return choose_checkpoint(history, wanted, newest=newest, training_dir=training)

    assert choose(None)["checkpoint"].startswith("/h/training/k2/")
    assert choose(None, newest=True) == {"checkpoint": "/h/training/k3/checkpoints/checkpoint-8", "score": 0.4}
    assert choose("k1", newest=True)["score"] == 0.6
    assert choose("k1/checkpoint-8")["score"] == 0.6
    assert choose("checkpoint-8")["score"] == 0.4  # the newest evaluated of that name
    assert choose("/h/training/k1/checkpoints/checkpoint-8")["score"] == 0.6
    assert isinstance(choose("checkpoints"), str)  # any path component is not a name
    assert choose(str(tmp_path)) == {"checkpoint": str(tmp_path), "score": None}
    # a training run never evaluated, by its name: its newest complete checkpoint, no score
    save_checkpoint(training / "fresh", 4)
    save_checkpoint(training / "fresh", 12)
    newest = str((training / "fresh" / "checkpoints" / "checkpoint-12").resolve())
    assert choose("fresh") == {"checkpoint": newest, "score": None}
    assert choose("fresh/checkpoint-4")["checkpoint"].endswith("fresh/checkpoints/checkpoint-4")
    (training / "empty" / "checkpoints").mkdir(parents=True)
    assert choose("empty") == f"training run 'empty' ({training / 'empty'}) has no complete checkpoint yet"
    missing = choose("k9")
    assert missing.startswith("no checkpoint 'k9': it names no evaluated checkpoint") and str(training / "k9") in missing
    assert "no evaluated checkpoint yet" in choose_checkpoint([], None, newest=True, training_dir=training)


def test_tdm_deploy_picks_the_best_the_named_or_with_force_the_newest(home, checkpoints):
    """Through Dagster (asset deployed_model), as users run it."""
    history = [{"checkpoint": str(checkpoints["b"]), "overall_accuracy": 0.8, "held_out_loss": 1.0},
               {"checkpoint": str(checkpoints["a"]), "overall_accuracy": 0.5, "held_out_loss": 2.0}]  # fmt: skip
    home.state_file("metrics_history").write_text("".join(json.dumps(entry) + "\n" for entry in history))
    with refused_port() as no_server:
        home.config_path.write_text(f"serving:\n  port: {no_server.rsplit(':', 1)[1]}\n")
        code, out = cli("deploy", "--json")
        assert code == 0 and json.loads(out)["deployed"] and json.loads(out)["name"] == "ckpt-b", out
        code, out = cli("deploy", "ckpt-a")  # named, but it scores below the deployed one: declined
        assert code == EXIT_DECLINED and "lower than the deployed ckpt-b's 0.8 (use --force" in out, out
        code, out = cli("deploy", "--force", "--json")  # the newest evaluated: ckpt-a
        assert code == 0 and json.loads(out)["name"] == "ckpt-a", out
        assert current_deployment(home.serving_dir) == "ckpt-a"
        code, out = cli("deploy", "ckpt-zz")
        assert code == 1 and "no checkpoint 'ckpt-zz'" in out and "Traceback" not in out
        code, out = cli("deploy", "ckpt-zz", "--json")  # stdout still carries one object
        assert code == 1 and json.loads(out)["deployed"] is False and "no checkpoint 'ckpt-zz'" in json.loads(out)["error"]


def test_tdm_deploy_finds_a_training_run_by_its_name(home, checkpoints):
    """``tdm deploy RUN`` for ``training/RUN`` never evaluated: its newest checkpoint."""
    folder = home.training_dir / "ckpt_20261207_120000_000000"
    save_checkpoint(folder, 8)
    for source in checkpoints["b"].iterdir():
        shutil.copy(source, folder / "checkpoints" / "checkpoint-8" / source.name)
    with refused_port() as no_server:
        home.config_path.write_text(f"serving:\n  port: {no_server.rsplit(':', 1)[1]}\n")
        code, out = cli("deploy", folder.name, "--json")
    assert code == 0 and json.loads(out)["name"] == "checkpoint-8", out
    assert json.loads(out)["checkpoint"] == str((folder / "checkpoints" / "checkpoint-8").resolve())
    assert current_deployment(home.serving_dir) == "checkpoint-8"


def test_a_record_from_before_targets_is_read_per_target(home, checkpoints):
    """The old deployments.json (one stack for whatever target each deploy went to): each
    attempt goes to its own target's history, stacks rebuilt from them; the next deploy
    writes the new form and keeps the other target's history."""
    remote = "me@gpu-box:/srv/serving"

    def attempt(name, outcome, score=None, remote_host=None):
        return {"name": name, "checkpoint": f"/c/{name}", "score": score, "time": "2026-12-01T00:00:00+00:00",
                "latency_s": 0.1, "outcome": outcome, "reason": "", "previous": None, "remote_host": remote_host,
                "forced": False}  # fmt: skip

    old = {"active": ["ckpt-a", "ckpt-b", "ckpt-r"], "scores": {"ckpt-a": 0.5, "ckpt-b": 0.6, "ckpt-r": 0.7},
           "history": [attempt("ckpt-a", "deployed", 0.5), attempt("ckpt-b", "deployed", 0.6),
                       attempt("ckpt-r", "deployed", 0.7, remote), attempt("ckpt-a", "rollback"),
                       attempt(None, "refused")]}  # fmt: skip
    home.deployments_file.parent.mkdir(parents=True, exist_ok=True)
    home.deployments_file.write_text(json.dumps(old))
    here = load_deployments(home.serving_dir)
    assert here["active"] == ["ckpt-a"] and here["scores"] == {"ckpt-a": 0.5, "ckpt-b": 0.6}
    assert [e["outcome"] for e in here["history"]] == ["deployed", "deployed", "rollback", "refused"]
    there = load_deployments(home.serving_dir, remote)
    assert there["active"] == ["ckpt-r"] and there["scores"] == {"ckpt-r": 0.7} and len(there["history"]) == 1

    assert deploy(checkpoints["c"], home.serving_dir, score=0.9, server_url=None).deployed
    record = json.loads(home.deployments_file.read_text())
    assert record["version"] == 2 and sorted(record["targets"]) == ["local", remote]
    assert load_deployments(home.serving_dir)["active"] == ["ckpt-a", "ckpt-c"]
    assert load_deployments(home.serving_dir, remote)["active"] == ["ckpt-r"]
