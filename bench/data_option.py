"""The ``--data DIR`` option of the benchmarks that read the public data sets.

By default they read the subsets shipped with the tests (``tests/data/``), so a clone with
nothing beside it runs them; ``--data`` names a folder with the full files (same names)
for full-size runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.support.fixture_data import FIXTURES_DIR, PublicData


def public_data(folder: str) -> PublicData:
    """``folder`` as the public data, refused with the missing file names if any is absent."""
    data = PublicData(Path(folder))
    missing = [path.name for path in data.files if not path.is_file()]
    if missing:
        raise argparse.ArgumentTypeError(f"{folder} has no {', '.join(missing)}")
    return data


def add_data_option(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(path.name for path in PublicData(Path()).files)
    parser.add_argument(
        "--data",
        type=public_data,
        default=str(FIXTURES_DIR),
        metavar="DIR",
        help=f"folder holding {names} (default: the subsets in tests/data; name the full files' folder for full-size runs)",
    )
