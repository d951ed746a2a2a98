"""The one config file, ``$TDM_HOME/config.yaml``, with env-var overrides.

Precedence, lowest to highest: built-in defaults, the config file, env vars
``TDM_<SECTION>_<KEY>`` (e.g. ``TDM_AUTO_GENERATE_COUNT=500``), then Dagster run config
for the run at hand. Invalid values fail at load with a message that names the key,
the bad value, where it came from and what is allowed: a typo must never silently fall
back to a default. The ``auto_generate`` keys are the seed design's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from tdm_dagster.home import PRIORITIES, TdmHome
from tdm_dagster.config.quality import QualitySettings

GENERATION_SOURCES = ("builtin", "skill_api", "inference")
CONFIG_ENV = "TDM_CONFIG"
"""Points at a config file other than ``$TDM_HOME/config.yaml``."""


class ConfigError(ValueError):
    """A config value is missing, of the wrong type or out of range."""


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
    min_completeness: float = 0.95
    min_consistency: float = 0.90
    min_validity: float = 0.95
    min_overall: float = 0.90
    max_record_bytes: int = 8 * 1024 * 1024
    """A single input record larger than this is rejected (memory stays bounded)."""
    max_batch_records: int = 100_000
    """An inbox file with more records is processed in consecutive parts of this size,
    each its own batch, so memory stays bounded whatever the file size."""

    def thresholds(self):
        from tdm_dagster.gate.scoring import MetricThresholds

        return MetricThresholds(self.min_completeness, self.min_consistency, self.min_validity, self.min_overall)


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
class TrainingConfig:
    model_path: str | None = None
    """A local Hugging Face model folder (e.g. a Qwen checkpoint); None: a tiny model built from a config."""
    tokenizer_path: str | None = None
    learning_rate: float = 5e-4
    batch_size: int = 8
    max_length: int = 512
    max_steps: int = 60
    min_examples: int = 32
    """Training waits until the queue holds at least this many examples."""
    lora: bool = False
    eval_per_level: int = 20
    """Held-out examples per skill and level in each evaluation."""


@dataclass(frozen=True)
class ServingConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    remote_host: str | None = None
    """Deploy with rsync to this host (user@host:path) instead of a local copy."""


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
class TdmConfig:
    auto_generate: AutoGenerateConfig = field(default_factory=AutoGenerateConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    skill_api: SkillApiConfig = field(default_factory=SkillApiConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    schedules: SchedulesConfig = field(default_factory=SchedulesConfig)
    quality: QualitySettings = field(default_factory=QualitySettings)
    source: str = "defaults"
    """Where the config was read from, for messages."""

    @property
    def inference_base_url(self) -> str:
        return f"http://{self.auto_generate.host}:{self.auto_generate.port}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: Any) -> str | None:
    return None if _is_int(value) and value > 0 else "a positive integer"


def _non_negative_int(value: Any) -> str | None:
    return None if _is_int(value) and value >= 0 else "an integer >= 0"


def _port(value: Any) -> str | None:
    return None if _is_int(value) and 1 <= value <= 65535 else "an integer port between 1 and 65535"


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda value: None if value in allowed else f"one of {', '.join(allowed)}"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "a non-empty string"


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def optional(value: Any) -> str | None:
        problem = check(value)
        return None if value is None or problem is None else f"{problem} or null"

    return optional


def _mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "a mapping of request fields"


def _positive_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return None if ok else "a positive number"


def _non_negative_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")
    return None if ok else "a number of seconds >= 0"


def _fraction(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    return None if ok else "a number between 0 and 1"


def _paths(value: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value)
    return None if ok else "a list of file paths"


_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")


def _cron(value: Any) -> str | None:
    fields = value.split() if isinstance(value, str) else []
    ok = len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)
    return None if ok else 'a cron expression of 5 fields, e.g. "0 */12 * * *"'


def _http_url(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith(("http://", "https://"))
    return None if ok else "an http:// or https:// URL"


_RULES: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "auto_generate": {
        "enabled": _bool,
        "source": _one_of(GENERATION_SOURCES),
        "host": _text,
        "port": _port,
        "count": _positive_int,
        "priority": _one_of(PRIORITIES),
        "threshold": _non_negative_int,
        "seed": _optional(_non_negative_int),
        "cooldown_sec": _non_negative_int,
        "payload": _mapping,
        "skill": _optional(_text),
    },
    "inference": {
        "model": _text,
        "timeout_sec": _positive_number,
        "max_concurrency": _positive_int,
        "max_attempts": _positive_int,
        "api_key_env": _text,
    },
    "skill_api": {
        "syllo_url": _http_url,
        "binary_url": _http_url,
        "timeout_sec": _positive_number,
    },
    "gate": {
        "level": _one_of(("quick", "standard", "deep")),
        "eval_sets": _paths,
        "near_duplicate_threshold": _fraction,
        "min_completeness": _fraction,
        "min_consistency": _fraction,
        "min_validity": _fraction,
        "min_overall": _fraction,
        "max_record_bytes": _positive_int,
        "max_batch_records": _positive_int,
    },
    "inbox": {
        "settle_sec": _non_negative_number,
    },
    "dataset": {
        "name": _text,
        "description": _text,
    },
    "training": {
        "model_path": _optional(_text),
        "tokenizer_path": _optional(_text),
        "learning_rate": _positive_number,
        "batch_size": _positive_int,
        "max_length": _positive_int,
        "max_steps": _positive_int,
        "min_examples": _positive_int,
        "lora": _bool,
        "eval_per_level": _positive_int,
    },
    "serving": {
        "host": _text,
        "port": _port,
        "remote_host": _optional(_text),
    },
    "collectors": {
        "git_repos": _paths,
        "docs": _paths,
        "conversation_logs": _paths,
        "max_commits": _positive_int,
    },
    "schedules": dict.fromkeys(SchedulesConfig.__dataclass_fields__, _cron),
}
_SECTION_TYPES = {
    "auto_generate": AutoGenerateConfig,
    "inference": InferenceConfig,
    "skill_api": SkillApiConfig,
    "gate": GateConfig,
    "inbox": InboxConfig,
    "dataset": DatasetConfig,
    "training": TrainingConfig,
    "serving": ServingConfig,
    "collectors": CollectorsConfig,
    "schedules": SchedulesConfig,
}
SECTIONS = (*_RULES, "quality")


SECRET_ENV_VARS = ("TDM_INFERENCE_API_KEY", "TDM_SERVING_ADMIN_TOKEN")
"""Secrets that live only in the environment and look like ``TDM_<SECTION>_<KEY>``
overrides: the env-override reader skips them (they are no config keys) and never shows
their values. The inference key is read through ``dg.EnvVar``
(``inference.api_key_env``); the serving admin token by ``tdm serve`` and ``deploy``."""

MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is refused before it is parsed."""

_SHOWN_VALUE_CHARS = 200


def _shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length for error messages."""
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + f"... ({len(text)} chars)"


def validate_section(section: str, values: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Check every key and value of one section; raise ConfigError naming the first bad one."""
    rules = _RULES[section]
    for key, value in values.items():
        if key not in rules:
            raise ConfigError(
                f"{origin}: unknown key {section}.{key}; allowed keys: {', '.join(rules)}"
            )
        problem = rules[key](value)
        if problem:
            raise ConfigError(f"{origin}: {section}.{key} is {_shown(value)}; expected {problem}")
    return dict(values)


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*name``).

    A config file has no use for them, and aliases are how a few hundred bytes expand
    into gigabytes (the "billion laughs" bomb); refusing them at the first ``*alias``
    keeps memory and time bounded by the file size.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases (*{event.anchor}) are not allowed in tdm config", event.start_mark
            )
        return super().compose_node(parent, index)


def _parse_yaml(text: str) -> Any:
    """YAML without aliases; too deep nesting is reported as a YAML error too."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as exc:
        raise yaml.YAMLError("nesting is too deep") from exc


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, tuple[Any, str]]]:
    """``TDM_AUTO_GENERATE_COUNT=500`` -> {"auto_generate": {"count": (500, "env TDM_...")}}.

    Values are parsed as YAML scalars, so ``true``, ``12``, ``null`` and ``{"a": 1}`` mean
    what they look like. ``SECRET_ENV_VARS`` are skipped.
    """
    overrides: dict[str, dict[str, tuple[Any, str]]] = {}
    for section in SECTIONS:
        prefix = f"TDM_{section.upper()}_"
        for name, raw in environ.items():
            if not name.startswith(prefix) or name in SECRET_ENV_VARS:
                continue
            key = name[len(prefix):].lower()
            try:
                value = _parse_yaml(raw) if raw.strip() else None
            except yaml.YAMLError as exc:
                raise ConfigError(f"env {name}: cannot parse {_shown(raw)}: {exc}") from exc
            overrides.setdefault(section, {})[key] = (value, f"env {name}")
    return overrides


def config_path_for(home: TdmHome, environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    explicit = environ.get(CONFIG_ENV)
    return Path(explicit).expanduser() if explicit else home.config_path


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the config file is larger than {MAX_CONFIG_BYTES} bytes; refused unread")
    try:
        data = _parse_yaml(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections ({', '.join(SECTIONS)})")
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{path}: unknown section {section!r}; allowed sections: {', '.join(SECTIONS)}")
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"{path}: section {section} must be a mapping of keys to values")
    return data


def load_config(home: TdmHome | None = None, environ: Mapping[str, str] | None = None) -> TdmConfig:
    """Defaults, then the config file, then env vars; every value validated."""
    environ = os.environ if environ is None else environ
    home = home or TdmHome.from_env(environ.get("TDM_HOME"))
    path = config_path_for(home, environ)
    file_data = _read_file(path)
    env_data = _env_overrides(environ)
    built: dict[str, Any] = {}
    for section in SECTIONS:
        merged: dict[str, Any] = {}
        for key, value in (file_data.get(section) or {}).items():
            merged[key] = (value, str(path))
        merged.update(env_data.get(section, {}))
        built[section] = _build_section(section, merged)
    origin = str(path) if path.exists() else "defaults"
    return TdmConfig(**built, source=origin)


def _build_section(section: str, merged: Mapping[str, tuple[Any, str]]) -> Any:
    if section == "quality":
        values = {key: value for key, (value, _origin) in merged.items()}
        origins = sorted({origin for _value, origin in merged.values()}) or ["defaults"]
        try:
            return QualitySettings.from_mapping(values)
        except ValueError as exc:
            raise ConfigError(f"{', '.join(origins)}: {exc}") from exc
    values: dict[str, Any] = {}
    for key, (value, origin) in merged.items():
        values.update(validate_section(section, {key: value}, origin))
    for key in ("eval_sets", "git_repos", "docs", "conversation_logs"):
        if key in values:
            values[key] = tuple(values[key])
    return _SECTION_TYPES[section](**values)


def with_overrides(config: TdmConfig, section: str, overrides: Mapping[str, Any], origin: str) -> TdmConfig:
    """Apply run-config overrides (``None`` values mean "not given") with the same checks."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return config
    validate_section(section, given, origin)
    return replace(config, **{section: replace(getattr(config, section), **given)})


def describe(config: TdmConfig) -> dict[str, Any]:
    """The effective config as plain data (the API key is never part of it)."""
    out: dict[str, Any] = {"source": config.source}
    for section in SECTIONS:
        obj = getattr(config, section)
        out[section] = {f.name: getattr(obj, f.name) for f in fields(obj)}
    return out
