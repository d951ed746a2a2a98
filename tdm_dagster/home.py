"""The one home directory that holds all tdm state (``TDM_HOME``).

Every path under it is named here and nowhere else, so the layout can be read (and
changed) in one place.

Layout::

    $TDM_HOME/
      config.yaml              the one config file (optional; defaults apply)
      inbox/                   files people and tools drop for ingestion
      archive/                 ingested inbox files; archive/trained/: queue files trained on
      failed/<batch_id>/       inbox entries that could not be read at all, with reason.json
      batches/<batch_id>/      each batch as generated and as validated
      reports/<batch_id>.json  one quality report per batch
      rejected/                rejected records and batches, with reasons
      queue/{high,normal,low}/ approved batches waiting for the trainer
      queue/.claimed/          queue files a training run has claimed
      queue/.rechecking/<p>/   queue files the re-check is judging
      held/{high,normal,low}/  queue files the re-check held back
      training/                checkpoints
      serving/                 the deployed model: <deployment>/ (hard links to a checkpoint), current, deployments.json
      datasets/                the dataset registry (catalog, objects, locks)
      exports/                 scheduled dataset exports
      eval_sets/               held-out sets the evaluation registered; the deep gate keeps them out of training
      api/                     the REST API's keys (hashed), their lock and the audit log of writes and deletes
      state/                   small state files (STATE_FILES), one per concern
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PRIORITIES = ("high", "normal", "low")
DEFAULT_HOME = Path("~/.tdm")

# The state files under state/, by what they hold.
STATE_FILES = {
    "curriculum": "curriculum.json",  # the active skill and level
    "last_generation": "last_generation.json",  # the generation cooldown
    "metrics_history": "metrics_history.jsonl",  # evaluation results over time
    "dedup_index": "dedup_index.npz",  # MinHash signatures of queued records
    "dedup_lock": "dedup_index.lock",
    "semantic_index": "semantic_index",  # embeddings of queued records (a folder: the [semantic] extra)
    "recheck": "recheck.json",  # the quality re-check's last pass
    "inbox_observed": "inbox_observed.json",  # size/mtime/inode seen per inbox file (settling)
}


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
    def shard_gates_dir(self) -> Path:
        return self.root / "shard_gates"

    def shard_gate_dir(self, name: str) -> Path:
        """One sharded gate run (asset ``gated_shards``): its decisions and report."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"shard gate run name {name!r} must be a plain folder name")
        return self.shard_gates_dir / name

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def batch_dir(self, batch_id: str) -> Path:
        return self.batches_dir / batch_id

    def report_file(self, batch_id: str) -> Path:
        return self.reports_dir / f"{batch_id}.json"

    def rejected_file(self, name: str, kind: str | None = None) -> Path:
        """``rejected/<name>.jsonl``, or ``rejected/<name>.<kind>.jsonl`` (e.g. ``recheck``)."""
        return self.rejected_dir / (f"{name}.{kind}.jsonl" if kind else f"{name}.jsonl")

    def state_file(self, name: str) -> Path:
        if name not in STATE_FILES:
            raise ValueError(f"state file {name!r} is not one of {', '.join(STATE_FILES)}")
        return self.state_dir / STATE_FILES[name]

    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def trained_archive_dir(self) -> Path:
        return self.archive_dir / "trained"

    @property
    def failed_dir(self) -> Path:
        return self.root / "failed"

    @property
    def claims_dir(self) -> Path:
        return self.queue_root / ".claimed"

    def rechecking_dir(self, priority: str) -> Path:
        return self.queue_root / ".rechecking" / self.queue_dir(priority).name

    def held_dir(self, priority: str) -> Path:
        return self.root / "held" / self.queue_dir(priority).name

    @property
    def training_dir(self) -> Path:
        return self.root / "training"

    @property
    def serving_dir(self) -> Path:
        return self.root / "serving"

    @property
    def deployments_file(self) -> Path:
        """The deployment record (written by ``serving.deploy``, read by ``tdm deployments``)."""
        from tdm_dagster.serving import DEPLOYMENTS_FILE

        return self.serving_dir / DEPLOYMENTS_FILE

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def eval_sets_dir(self) -> Path:
        return self.root / "eval_sets"

    @property
    def api_dir(self) -> Path:
        return self.root / "api"

    @property
    def api_keys_file(self) -> Path:
        """The REST API's keys: names, scopes and sha256 hashes (never a key itself)."""
        return self.api_dir / "keys.json"

    @property
    def api_keys_lock(self) -> Path:
        return self.api_dir / "keys.lock"

    @property
    def api_running_file(self) -> Path:
        """Where a running ``tdm api`` says where it listens (URL, pid, the name of its
        local key's file), so ``tdm validate`` finds it; removed when it stops."""
        return self.api_dir / "running.json"

    @property
    def api_local_key_file(self) -> Path:
        """The running service's read key for this machine's ``tdm validate`` (mode 0600,
        a new key each start, known to that process only)."""
        return self.api_dir / "local.key"

    @property
    def api_audit_log(self) -> Path:
        """One JSON line per write or delete the REST API answered; appended, never rewritten."""
        return self.api_dir / "audit.jsonl"

    def registered_eval_sets(self) -> list[Path]:
        """The held-out sets evaluations registered, in a stable order."""
        return sorted(self.eval_sets_dir.glob("*.jsonl"))

    def ensure(self) -> "TdmHome":
        """Create the folders every stage reads (idempotent); the others are made by the
        stage that first writes them."""
        for folder in (
            *(self.queue_dir(p) for p in PRIORITIES),
            self.reports_dir,
            self.rejected_dir,
            self.batches_dir,
            self.state_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self
