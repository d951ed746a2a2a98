"""Fixtures of the serving tests: the admin token in the environment, three tiny
checkpoints plus a corrupt one, and a serving folder with the first deployed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.serving.deploy import deploy
from tests.unit.serving.helpers import ADMIN_TOKEN, make_checkpoint


@pytest.fixture(autouse=True)
def admin_token(monkeypatch) -> str:
    """Servers and deploy() in these tests share the admin token, as they would in use."""
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    return ADMIN_TOKEN


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Built once for every serving test module; the tests only read them."""
    root = tmp_path_factory.mktemp("checkpoints")
    ckpt_a = make_checkpoint(root / "ckpt-a", seed=1)
    ckpt_b = make_checkpoint(root / "ckpt-b", seed=2)
    ckpt_c = make_checkpoint(root / "ckpt-c", seed=3)
    corrupt = root / "ckpt-corrupt-weights"
    shutil.copytree(ckpt_a, corrupt)
    for weights in corrupt.glob("*.safetensors"):
        weights.write_bytes(b"this is not a safetensors file" * 10)
    return {"a": ckpt_a, "b": ckpt_b, "c": ckpt_c, "corrupt": corrupt}


@pytest.fixture
def serving(tmp_path, checkpoints) -> Path:
    """A serving folder with ckpt-a deployed (score 0.5)."""
    serving_dir = tmp_path / "serving"
    result = deploy(checkpoints["a"], serving_dir, score=0.5, server_url=None)
    assert result.deployed, result.reason
    return serving_dir
