import pytest

from tdm_dagster.home import TdmHome


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
