from collections.abc import Iterator

import pytest

from tdm_dagster.home import TdmHome

# The hooks that fail every test touching a path beside the checkout (tests/support/checkout_guard.py).
from tests.support.checkout_guard import (  # noqa: F401
    pytest_configure,
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_sessionfinish,
)
from tests.support.fake_inference_server import FakeInference, fake_inference_server


@pytest.fixture
def home(tmp_path, monkeypatch) -> TdmHome:
    """A fresh TDM_HOME for each test, with no config env vars leaking in."""
    import os

    for name in list(os.environ):
        if name.startswith("TDM_"):
            monkeypatch.delenv(name)
    root = tmp_path / "tdm-home"
    monkeypatch.setenv("TDM_HOME", str(root))
    return TdmHome(root).ensure()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeInference, str]]:
    """One fake inference server per test module (fast), reset for each test by ``fake``."""
    with fake_inference_server() as running:
        yield running


@pytest.fixture
def fake(server: tuple[FakeInference, str]) -> FakeInference:
    server[0].reset()
    return server[0]


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    """A persistent Dagster instance folder (as users set DAGSTER_HOME), telemetry off."""
    folder = tmp_path / "dagster-home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder
