"""The one home directory that holds all tdm state (``TDM_HOME``).

Layout::

    $TDM_HOME/
      config.yaml              the one config file (optional; defaults apply)
      queue/{high,normal,low}/ approved batches waiting for the trainer
      reports/                 one quality report (JSON) per batch
      rejected/                rejected records and batches, with reasons
      batches/<batch_id>/      each batch as generated and as validated
      state/                   curriculum, generation history, cooldown
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PRIORITIES = ("high", "normal", "low")
DEFAULT_HOME = Path("~/.tdm")


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit`` if given, else ``$TDM_HOME``, else ``~/.tdm``; always absolute."""
    raw = explicit or os.environ.get("TDM_HOME") or DEFAULT_HOME
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class TdmHome:
    root: Path

    @classmethod
    def from_env(cls, explicit: str | os.PathLike[str] | None = None) -> "TdmHome":
        return cls(resolve_home(explicit))

    @classmethod
    def of(cls, home: "TdmHome | str | os.PathLike[str]") -> "TdmHome":
        """``home`` itself, or the home at a path: for functions that take either."""
        return home if isinstance(home, TdmHome) else cls.from_env(home)

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def queue_root(self) -> Path:
        return self.root / "queue"

    def queue_dir(self, priority: str) -> Path:
        if priority not in PRIORITIES:
            raise ValueError(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
        return self.queue_root / priority

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "rejected"

    @property
    def batches_dir(self) -> Path:
        return self.root / "batches"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def batch_dir(self, batch_id: str) -> Path:
        return self.batches_dir / batch_id

    def ensure(self) -> "TdmHome":
        """Create every folder of the layout (idempotent)."""
        for folder in (
            *(self.queue_dir(p) for p in PRIORITIES),
            self.reports_dir,
            self.rejected_dir,
            self.batches_dir,
            self.state_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self
