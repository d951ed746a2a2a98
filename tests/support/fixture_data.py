"""Where the tests find the public data: real subsets shipped in ``tests/data/`` (source,
record counts, how they were cut and their licences: ``tests/data/README.md``).

Every test names these paths, never a folder outside the checkout, so a clone with
nothing beside it passes. The benchmarks take the same file names from any folder
(``--data``, see ``bench/data_option.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class PublicData:
    """The three public files, by their published names, in one folder."""

    folder: Path

    @property
    def gsm8k(self) -> Path:
        """GSM8K training problems, a JSON array of alpaca records."""
        return self.folder / "gsm8k_train.alpaca.json"

    @property
    def roleplay(self) -> Path:
        """GPTeacher roleplay, a JSON array of alpaca records."""
        return self.folder / "gpteacher_roleplay.alpaca.json"

    @property
    def seed_tasks(self) -> Path:
        """The Stanford Alpaca seed tasks, JSON lines, several instances per task."""
        return self.folder / "alpaca_seed_tasks.jsonl"

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return self.gsm8k, self.roleplay, self.seed_tasks


FIXTURES = PublicData(FIXTURES_DIR)
GSM8K = FIXTURES.gsm8k
ROLEPLAY = FIXTURES.roleplay
SEED_TASKS = FIXTURES.seed_tasks
