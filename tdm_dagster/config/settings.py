"""The one config file, ``$TDM_HOME/config.yaml``, with env-var overrides.

Precedence, lowest to highest: built-in defaults, the config file, env vars
``TDM_<SECTION>_<KEY>`` (e.g. ``TDM_AUTO_GENERATE_COUNT=500``), then Dagster run config
for the run at hand. Invalid values fail at load with a message that names the key,
the bad value, where it came from and what is allowed: a typo must never silently fall
back to a default. The ``auto_generate`` keys are the seed design's.

``TdmConfig`` holds one section each: the dataclasses of ``config.sections``,
``config.training`` and ``config.quality`` state the keys and defaults, ``config.rules``
what each key accepts; this module reads, merges and validates them.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from tdm_dagster.config.bounds import Bounded
from tdm_dagster.config.quality import BOUNDS as QUALITY_BOUNDS, QualitySettings
from tdm_dagster.config.rules import RULES
from tdm_dagster.config.sections import (
    ApiConfig,
    AutoGenerateConfig,
    CollectorsConfig,
    DatasetConfig,
    GateConfig,
    InboxConfig,
    InferenceConfig,
    LabelsConfig,
    ProfileConfig,
    RayConfig,
    SchedulesConfig,
    ServingConfig,
    SkillApiConfig,
    StorageConfig,
)
from tdm_dagster.config.training import TrainingConfig
from tdm_dagster.home import TdmHome

CONFIG_ENV = "TDM_CONFIG"
"""Points at a config file other than ``$TDM_HOME/config.yaml``."""


class ConfigError(ValueError):
    """A config value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class TdmConfig:
    auto_generate: AutoGenerateConfig = field(default_factory=AutoGenerateConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    skill_api: SkillApiConfig = field(default_factory=SkillApiConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    schedules: SchedulesConfig = field(default_factory=SchedulesConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    quality: QualitySettings = field(default_factory=QualitySettings)
    source: str = "defaults"
    """Where the config was read from, for messages."""

    @property
    def inference_base_url(self) -> str:
        return f"http://{self.auto_generate.host}:{self.auto_generate.port}"


_SECTION_TYPES = {
    "auto_generate": AutoGenerateConfig,
    "inference": InferenceConfig,
    "skill_api": SkillApiConfig,
    "gate": GateConfig,
    "ray": RayConfig,
    "inbox": InboxConfig,
    "dataset": DatasetConfig,
    "training": TrainingConfig,
    "serving": ServingConfig,
    "api": ApiConfig,
    "storage": StorageConfig,
    "collectors": CollectorsConfig,
    "schedules": SchedulesConfig,
    "labels": LabelsConfig,
    "profile": ProfileConfig,
}
SECTIONS = (*RULES, "quality")
NUMERIC_KEYS: Mapping[str, Bounded] = {
    f"{section}.{key}": check
    for section, checks in (*RULES.items(), ("quality", QUALITY_BOUNDS))
    for key, check in checks.items()
    if isinstance(check, Bounded)
}
"""``section.key`` -> the check of every numeric key, with its maximum (docs/reference/config.md, Maxima)."""


SECRET_ENV_VARS = ("TDM_INFERENCE_API_KEY", "TDM_SERVING_ADMIN_TOKEN")
"""Secrets that live only in the environment and look like ``TDM_<SECTION>_<KEY>``
overrides: the env-override reader skips them (they are no config keys) and never shows
their values. The inference key is read through ``dg.EnvVar``
(``inference.api_key_env``); the serving admin token by ``tdm serve`` and ``deploy``."""

API_URL_ENV = "TDM_API_URL"
API_KEY_ENV = "TDM_API_KEY"
CLIENT_ENV_VARS = (API_URL_ENV, API_KEY_ENV)
"""What ``tdm validate`` reads to use a running ``tdm api`` (its URL, and a key, which is a
secret): they look like ``TDM_API_<KEY>`` overrides but are no config keys, so the
env-override reader skips them and never shows their values."""

MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is refused before it is parsed."""

_SHOWN_VALUE_CHARS = 200


def _shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length for error messages, credentials in URLs masked."""
    from tdm_dagster.http.retry import mask_credentials  # only when an error is being built

    text = mask_credentials(repr(value))
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + f"... ({len(text)} chars)"


def validate_section(section: str, values: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Check every key and value of one section; raise ConfigError naming the first bad one."""
    rules = RULES[section]
    for key, value in values.items():
        if key not in rules:
            raise ConfigError(
                f"{origin}: unknown key {section}.{key}; allowed keys: {', '.join(rules)}"
            )
        problem = rules[key](value)
        if problem:
            raise ConfigError(f"{origin}: {section}.{key} is {_shown(value)}; expected {problem}")
    return dict(values)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names one key twice: which value was meant is unknowable, so neither is taken."""


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*name``) and duplicate keys.

    A config file has no use for aliases, and they are how a few hundred bytes expand
    into gigabytes (the "billion laughs" bomb); refusing them at the first ``*alias``
    keeps memory and time bounded by the file size. A key given twice would silently
    keep the last value (PyYAML's default), so the second is refused with both lines.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases (*{event.anchor}) are not allowed in tdm config", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, Hashable):
                    continue  # SafeLoader refuses it below
                if key in first_line:
                    raise DuplicateKeyError(f"duplicate key {key!r} at lines {first_line[key]} and {line}; keep one")
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str) -> Any:
    """YAML without aliases or duplicate keys; too deep nesting is reported as a YAML error too."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as exc:
        raise yaml.YAMLError("nesting is too deep") from exc


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, tuple[Any, str]]]:
    """``TDM_AUTO_GENERATE_COUNT=500`` -> {"auto_generate": {"count": (500, "env TDM_...")}}.

    Values are parsed as YAML scalars, so ``true``, ``12``, ``null`` and ``{"a": 1}`` mean
    what they look like. ``SECRET_ENV_VARS`` and ``CLIENT_ENV_VARS`` are skipped.
    """
    overrides: dict[str, dict[str, tuple[Any, str]]] = {}
    for section in SECTIONS:
        prefix = f"TDM_{section.upper()}_"
        for name, raw in environ.items():
            if not name.startswith(prefix) or name in SECRET_ENV_VARS or name in CLIENT_ENV_VARS:
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
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
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
    for key in ("eval_sets", "quality_checks", "generators", "git_repos", "docs", "conversation_logs", "intents", "sentiments", "entity_labels", "personas"):
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
