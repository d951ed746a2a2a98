"""One frozen dataclass per section of config.yaml (``training`` and ``quality`` have
their own modules): the keys a section has and their defaults, stated once.

What each key accepts is in ``config.rules``; loading, env overrides and ``TdmConfig``
are in ``config.settings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tdm_dagster.gate.semantic import DUPLICATE_THRESHOLD, LEAKAGE_THRESHOLD

GENERATION_SOURCES = ("builtin", "skill_api", "inference")
GATE_ENGINES = ("in_process", "ray")
BATCH_SOURCES = ("generated", "skill_api", "inbox", "import")
"""Where a gated batch comes from, each with its own ``gate.on_batch_failure`` choice."""
ON_BATCH_FAILURE = ("reject", "salvage")
DEFAULT_ON_BATCH_FAILURE = {"generated": "reject", "skill_api": "reject", "inbox": "salvage", "import": "salvage"}
"""A generator's batch that fails is suspect as a whole (regenerating is cheap); data a
person hands in keeps the records that pass on their own (see :mod:`tdm_dagster.gate.salvage`)."""


@dataclass(frozen=True)
class AutoGenerateConfig:
    enabled: bool = True
    source: str = "builtin"
    """Where batches come from: ``builtin`` generators in-process, the ``skill_api``
    HTTP servers, or the ``inference`` server (the 3090) answering curriculum prompts."""
    host: str = "127.0.0.1"
    port: int = 8765
    count: int = 100
    priority: str = "normal"
    threshold: int = 2
    """Generate when the queue holds this many batch files or fewer."""
    seed: int | None = None
    """Fixed seed for reproducible batches; ``None`` derives one per batch."""
    cooldown_sec: int = 300
    payload: dict[str, Any] = field(default_factory=dict)
    """Extra request fields for the inference server (temperature, max_tokens, ...)."""
    skill: str | None = None
    """Skill to generate; ``None`` follows the curriculum's active skill."""
    generators: tuple[str, ...] = ()
    """Your own skill generators, as ``"module:Class"`` references (docs/concepts/loop.md, "Your own
    generators"); each is instantiated once and found by its ``skill``."""


@dataclass(frozen=True)
class InferenceConfig:
    model: str = "default"
    timeout_sec: float = 60.0
    max_concurrency: int = 4
    max_attempts: int = 4
    api_key_env: str = "TDM_INFERENCE_API_KEY"
    """Name of the env var holding the API key; the key itself never lives in config."""


@dataclass(frozen=True)
class SkillApiConfig:
    syllo_url: str = "http://127.0.0.1:8080"
    binary_url: str = "http://127.0.0.1:8090"
    timeout_sec: float = 30.0

    def urls(self) -> dict[str, str]:
        return {"syllo": self.syllo_url, "binary": self.binary_url}


@dataclass(frozen=True)
class GateConfig:
    level: str = "standard"
    """quick: structure only; standard: all five suites; deep: adds duplicates and leakage."""
    eval_sets: tuple[str, ...] = ()
    """Evaluation data files (any format tdm reads) that training data must not leak into."""
    near_duplicate_threshold: float = 0.8
    semantic_duplicate_threshold: float = DUPLICATE_THRESHOLD
    """Cosine at or above which two conversations are semantic near-duplicates (deep level,
    ``[semantic]`` extra); chosen by measured precision and recall, docs/concepts/gate.md, "Semantic duplicates"."""
    semantic_leakage_threshold: float = LEAKAGE_THRESHOLD
    """Cosine between a record's prompt and an evaluation item's prompt at or above which
    the record is the item in other words (a leak, rejected)."""
    verifiers: dict[str, str] = field(default_factory=dict)
    """Skill -> answer verifier name, for skills whose own verifier (or the generic one)
    is not the right judge, e.g. ``{gsm8k: my_gsm8k}`` after registering ``my_gsm8k``."""
    quality_checks: tuple[str, ...] = ()
    """Your own record checks, ``"module:function"`` each (see
    :mod:`tdm_dagster.gate.record_checks`), run with the built-in ones at standard and deep."""
    min_completeness: float = 0.95
    min_consistency: float = 0.90
    min_validity: float = 0.95
    min_overall: float = 0.90
    max_record_bytes: int = 8 * 1024 * 1024
    """A single input record larger than this is rejected (memory stays bounded)."""
    max_batch_records: int = 100_000
    """An inbox file with more records is processed in consecutive parts of this size,
    each its own batch, so memory stays bounded whatever the file size."""
    on_batch_failure: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ON_BATCH_FAILURE))
    """Per source (``BATCH_SOURCES``): ``reject`` a failing batch whole, or ``salvage`` the
    records that pass on their own. Sources not named keep their default."""
    engine: str = "in_process"
    """Where a folder of Parquet shards is gated as one batch (``tdm validate-shards``,
    asset ``gated_shards``): ``in_process``, or ``ray`` (the cluster at ``ray.address``)."""

    def thresholds(self):
        from tdm_dagster.gate.scoring import MetricThresholds

        return MetricThresholds(self.min_completeness, self.min_consistency, self.min_validity, self.min_overall)

    def __post_init__(self) -> None:  # a partial mapping in config.yaml keeps the other sources' defaults
        object.__setattr__(self, "on_batch_failure", {**DEFAULT_ON_BATCH_FAILURE, **self.on_batch_failure})


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None
    """The Ray cluster for ``gate.engine: ray``: ``ray://head:10001`` (Ray Client), or
    ``head:6379`` / ``auto`` from a node of the cluster; None starts a local Ray on this machine."""


@dataclass(frozen=True)
class InboxConfig:
    settle_sec: float = 5.0
    """A file is claimed once its size and mtime have not changed for this long (0: at
    once, safe only when every tool writes a temp name and renames into place)."""


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "training"
    """The dataset that approved batches accumulate into (asset ``training_dataset``)."""
    description: str = "Approved batches, as queued for training"


@dataclass(frozen=True)
class ServingConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    remote_host: str | None = None
    """Deploy with rsync over ssh to ``[user@]host:/absolute/path`` (the serving folder on
    that host) instead of into ``$TDM_HOME/serving``; the record stays here."""
    ssh_config: str | None = None
    """An ssh client config file (``ssh -F``) for deploys to ``remote_host``: port,
    identity, known-hosts file. Null: ssh's own (``~/.ssh/config``)."""


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    """Where ``tdm api`` listens: loopback, so opening it to a network is a deliberate choice."""
    port: int = 8770
    max_upload_bytes: int = 256 * 1024 * 1024
    """A bigger upload (an import, a file to validate) gets 413 before it is read whole."""
    client_connect_timeout_sec: float = 2.0
    """``tdm validate`` with ``TDM_API_URL``: a service that does not accept the connection
    this fast is treated as not there (the file is validated in-process)."""
    client_read_timeout_sec: float = 60.0
    """... and one that stays silent this long, while it is sent the file or while it
    answers, is treated as stalled: the file is validated in-process."""
    job_memory_reserve_mb: int = 1024
    """``POST /v1/scheduler/run`` refuses a job whose estimated memory exceeds the box's
    ``MemAvailable`` less this reserve (kept for everything else on the box)."""


@dataclass(frozen=True)
class StorageConfig:
    remote: str | None = None
    """Where ``tdm datasets push/pull`` and ``tdm checkpoints push/pull`` go when no
    ``--remote`` is given: ``s3://bucket/prefix`` or ``gs://bucket/prefix``. Credentials
    never live here: the clients read them from the environment."""
    endpoint_url: str | None = None
    """An S3-compatible endpoint (MinIO, R2, a local moto server); None: AWS, or ``$AWS_ENDPOINT_URL``."""
    push_checkpoints: bool = False
    """The trainer pushes each new checkpoint to ``remote``, and ``deployed_model`` records
    what it deployed there, so a serving box can ``tdm checkpoints pull --deployed``."""
    auto_push: bool = False
    """Every new dataset version is pushed to ``remote`` as it is committed
    (:mod:`tdm_dagster.datasets.auto_push`); a failed push leaves it committed here."""


@dataclass(frozen=True)
class CollectorsConfig:
    git_repos: tuple[str, ...] = ()
    """Repositories whose commit history becomes "write the commit message" examples."""
    docs: tuple[str, ...] = ()
    """Folders (or files) of markdown whose sections become instruction examples."""
    conversation_logs: tuple[str, ...] = ()
    """Chat JSONL logs with feedback; positively rated conversations are kept."""
    max_commits: int = 500


@dataclass(frozen=True)
class SchedulesConfig:
    """Cron expressions (UTC) of the schedules; each schedule is off until turned on."""

    generate_and_queue: str = "0 * * * *"
    mine_sources: str = "15 */6 * * *"
    recheck_quality: str = "45 */12 * * *"
    deduplicate_dataset: str = "30 2 * * *"
    export_dataset: str = "0 3 * * *"
    refresh_stats: str = "5 * * * *"


@dataclass(frozen=True)
class LabelsConfig:
    """The labels labelled examples (spec ``labelled_v1``) may carry; an empty set allows any."""

    intents: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    entity_labels: tuple[str, ...] = ()
    personas: tuple[str, ...] = ()
    intent_mapping: dict[str, str] = field(default_factory=dict)
    """Old intent -> new, what ``tdm datasets derive --intent-mapping config`` applies."""


@dataclass(frozen=True)
class ProfileConfig:
    """The data profile the trainer applies to every record before training
    (:mod:`tdm_dagster.training.profiles`); ``name: null`` trains on the records as they are."""

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Passed to the profile as keyword arguments."""
