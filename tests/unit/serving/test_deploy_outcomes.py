"""What ``tdm deploy`` ends with, against a real ``tdm serve`` on a free port: a
checkpoint whose weights hold NaN, or whose logits overflow (finite weights), is refused
and switched back; the admin token refused; and every deployment that does not end
deployed exits non-zero, with one JSON object on stdout under ``--json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tdm_dagster.assets.train import DEPLOYMENT_LIVE
from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.serving.deploy import current_deployment, load_deployments
from tests.support.tdm_serve import tdm_serve
from tests.unit.serving.helpers import ADMIN_TOKEN, chat, cli


def _with_weights(source: Path, folder: Path, change) -> Path:
    """A copy of the checkpoint ``source`` whose weights ``change`` edited in place."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, folder)
    weights = load_file(folder / "model.safetensors")
    change(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def broken(checkpoints, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("broken")

    def overflow(weights):  # every weight finite, every logit +-inf: greedy answers, sampling fails
        weights["model.norm.weight"].fill_(1e10)
        weights["lm_head.weight"].fill_(1e38)

    return {
        "nan": _with_weights(checkpoints["a"], root / "ckpt-nan",
                             lambda weights: weights["model.layers.0.mlp.down_proj.weight"].fill_(float("nan"))),
        "overflow": _with_weights(checkpoints["a"], root / "ckpt-overflow", overflow),
    }  # fmt: skip


def _deploy(*args: str) -> tuple[int, dict]:
    code, out = cli("deploy", *args, "--json")
    return code, json.loads(out)  # one object on stdout, whatever the outcome


def test_non_finite_checkpoints_are_refused_and_failed_deploys_exit_1(home, checkpoints, broken, tmp_path, monkeypatch):
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)  # `home` cleared every TDM_ variable
    with tdm_serve(home.serving_dir, tmp_path, TDM_SERVING_ADMIN_TOKEN=ADMIN_TOKEN) as url:
        home.config_path.write_text(f"serving:\n  host: 127.0.0.1\n  port: {url.rsplit(':', 1)[1]}\n")
        code, data = _deploy(str(checkpoints["a"]))
        assert code == 0 and data["deployed"] and data["outcome"] == "deployed", data

        # NaN weights: the server refuses to load them; the pointer goes back
        code, data = _deploy(str(broken["nan"]), "--force")
        assert code == 1 and not data["deployed"] and data["outcome"] == "failed", data
        assert "NaN or infinite" in data["reason"] and "switched back to ckpt-a" in data["reason"]
        assert current_deployment(home.serving_dir) == "ckpt-a"
        assert chat(url, temperature=1.0).json()["model"] == "ckpt-a"  # sampling still works

        # finite weights, non-finite logits: greedy works, the sampled test request fails
        code, data = _deploy(str(broken["overflow"]), "--force")
        assert code == 1 and data["outcome"] == "failed", data
        assert data["reason"].startswith("sampled test completion failed: 500") and "switched back to ckpt-a" in data["reason"]
        assert "generation failed: probability tensor contains either `inf`, `nan`" in data["reason"]
        assert httpx.get(url + "/health").json()["model"] == "ckpt-a"
        assert chat(url, temperature=1.0).status_code == 200

        # the server refuses the token deploy sends: not deployed, exit 1 (text too)
        monkeypatch.setenv(ADMIN_TOKEN_ENV, "not-the-token")
        code, out = cli("deploy", str(checkpoints["b"]), "--force")
        assert code == 1 and "missing or wrong admin token" in out and "switched back to ckpt-a" in out, out
        monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)

        # the same through Dagster, as cron's `dagster job execute` runs it: the blocking
        # check deployment_live fails the run (non-zero exit, the check-failure alert)
        result = _deploy_run(home, broken["nan"])
        assert not result.success
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.check_name == DEPLOYMENT_LIVE and not evaluation.passed
        assert evaluation.metadata["outcome"].value == "failed"

    outcomes = [entry["outcome"] for entry in load_deployments(home.serving_dir)["history"]]
    assert outcomes == ["deployed", "failed", "failed", "failed", "failed"]


def _deploy_run(home, checkpoint: Path):
    """A ``deploy_best`` run of ``checkpoint`` (forced) in this process."""
    import dagster as dg

    from tdm_dagster.config.settings import load_config
    from tdm_dagster.jobs import DEPLOY_BEST, deploy_run_config
    from tdm_dagster.location import build_definitions

    job = build_definitions(load_config(home)).resolve_job_def(DEPLOY_BEST)
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(run_config=deploy_run_config(True, str(checkpoint)), instance=instance, raise_on_error=False)
