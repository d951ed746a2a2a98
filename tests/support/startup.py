"""What a fresh process imports: ``python -X importtime``'s module list, for the tests
that keep the code location and the CLI's quick commands light, and a home holding
many batches for timing ``tdm stats``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HEAVY_MODULES = ("great_expectations", "torch", "transformers", "dagster_ray", "ray", "pandas", "numpy", "pyarrow", "scipy", "lingua", "spacy", "datasets")
"""Top-level packages that each cost from a tenth of a second to several seconds to import."""


def imported_modules(code: str, args: tuple[str, ...] = (), env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -c code *args``; the process and every module it imported."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )  # fmt: skip
    modules = {line.rsplit("|", 1)[1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:") and "|" in line}
    return completed, modules


def heavy(modules: set[str]) -> list[str]:
    """The :data:`HEAVY_MODULES` among ``modules``."""
    return sorted(name for name in HEAVY_MODULES if name in modules)


TDM_MAIN = "from tdm_dagster.cli import main; main()"
"""``-c`` code that runs ``tdm`` with the arguments after it."""


def home_with_batches(root: Path, count: int, report: Mapping[str, Any], plan: Mapping[str, Any]) -> Path:
    """A ``TDM_HOME`` at ``root`` with ``count`` tested batches, each ``plan`` and
    ``report`` under its own id (the layout ``tdm generate`` leaves)."""
    from tdm_dagster.home import TdmHome

    home = TdmHome(root).ensure()
    home.reports_dir.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        batch_id = f"syllo_autogen_20261101_{number:06d}_count10"
        folder = home.batches_dir / batch_id
        folder.mkdir(parents=True)
        (folder / "batch.json").write_text(json.dumps({**plan, "batch_id": batch_id}))
        (folder / "generated.jsonl").write_text('{"messages": []}\n')
        home.report_file(batch_id).write_text(json.dumps({**report, "batch_id": batch_id}))
    return root
