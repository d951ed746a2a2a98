"""``tdm serve`` as users run it: a real process on 127.0.0.1, started from this checkout.

    with tdm_serve(serving_dir, tmp_path) as url:
        httpx.get(url + "/health")

The command is this checkout's CLI (``python -c "from tdm_dagster.cli import main; ..."``
in the repository root), not whatever ``tdm`` script the venv holds, so the code under
test is the code that serves. ``TDM_HOME`` is a fresh folder under ``folder``; the
admin token comes from the environment the test sets. The server's output goes to
``folder/tdm-serve.log``, shown if it fails to start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.dagster_processes import dagster_process, free_port

CLI = [sys.executable, "-c", "from tdm_dagster.cli import main; main()"]


@contextmanager
def tdm_serve(serving_dir: Path, folder: Path, **env: str) -> Iterator[str]:
    """Run ``tdm serve --dir serving_dir`` on a free loopback port until the block exits."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "TDM_HOME": str(folder / "tdm-home"), **env}
    args = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--dir", str(serving_dir)]
    with dagster_process(args, env=environment, log=folder / "tdm-serve.log", ready_url=url,
                         ready_path="/v1/models", timeout=120):  # fmt: skip
        yield url
