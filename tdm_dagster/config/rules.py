"""What each config.yaml key accepts: one check per key, section by section.

A check returns None for a good value, else what is expected ("a positive integer"),
which ``config.settings.validate_section`` puts into the error with the key, the value
and where it came from. The keys of a section are exactly its dataclass's fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tdm_dagster.config.bounds import (
    DAY_SEC,
    FRACTION,
    MAX_BATCH_RECORDS,
    MAX_SEED,
    PORT,
    count,
    count_from_zero,
    non_negative_number,
    positive_number,
)
from tdm_dagster.config.sections import BATCH_SOURCES, GATE_ENGINES, GENERATION_SOURCES, ON_BATCH_FAILURE, SchedulesConfig
from tdm_dagster.config.training import LR_SCHEDULES
from tdm_dagster.home import PRIORITIES
from tdm_dagster.serving.remote import remote_host_problem


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def _mapping_of(what: str) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, dict) else f"a mapping of {what}"


def _paths(value: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value)
    return None if ok else "a list of file paths"


def _labels(value: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value)
    return None if ok else "a list of label names"


def _label_mapping(value: Any) -> str | None:
    ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items())
    return None if ok else "a mapping of old label: new label"


_CHECK_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _references(what: str, example: str) -> Callable[[Any], str | None]:
    """A list of ``module:attribute`` references (checks, generators) to import."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and _CHECK_REFERENCE.match(v) for v in value)
        return None if ok else f'a list of "module:{what}" references, e.g. ["{example}"]'

    return check


_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")


def _policy_per_source(value: Any) -> str | None:
    expected = f"a mapping of source ({', '.join(BATCH_SOURCES)}) to {' or '.join(ON_BATCH_FAILURE)}"
    if not isinstance(value, dict):
        return expected
    for source, policy in value.items():
        if source not in BATCH_SOURCES:
            return f"{expected}; {source!r} is no source"
        if policy not in ON_BATCH_FAILURE:
            return f"{expected}; {source}: {policy!r} is neither"
    return None


def _cron(value: Any) -> str | None:
    fields = value.split() if isinstance(value, str) else []
    ok = len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)
    return None if ok else 'a cron expression of 5 fields, e.g. "0 */12 * * *"'


def _http_url(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith(("http://", "https://"))
    return None if ok else "an http:// or https:// URL"


def _remote_url(value: Any) -> str | None:
    from tdm_dagster.storage.remote import check_remote_url

    return check_remote_url(value)


_SEED = count_from_zero(MAX_SEED)
_TIMEOUT = positive_number(DAY_SEC)
_STEPS = count(1_000_000_000)
"""Optimizer steps (and warm-up, checkpoint spacing): a billion is years of training."""
_RUN_EXAMPLES = count(10_000_000)
"""The examples one training run claims and holds in memory."""


TINY_MODEL_MAX_PARAMETERS = 1_000_000_000
"""About 16 GB to train in float32 with AdamW: bounded, and far above a "tiny" model."""
_LLAMA_DEFAULT_SIZES = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32}
"""``LlamaConfig``'s defaults for the sizes ``tiny_model`` leaves out (transformers is not
imported here); layers x (4 hidden² attention + 3 hidden x intermediate MLP) is the
model's size without its embeddings."""


def _tiny_model(value: Any) -> str | None:
    """A mapping whose model is at most ``TINY_MODEL_MAX_PARAMETERS`` (the trainer builds
    it in memory; a bigger model is a ``model_path``)."""
    expected = f"a mapping of LlamaConfig fields (hidden_size, num_hidden_layers, ...) of a model of at most {TINY_MODEL_MAX_PARAMETERS} parameters"
    if not isinstance(value, dict):
        return expected
    sizes = {**_LLAMA_DEFAULT_SIZES, **value}
    if not all(_is_int(sizes[key]) and sizes[key] > 0 for key in _LLAMA_DEFAULT_SIZES):
        return f"{expected}, with positive integer {', '.join(_LLAMA_DEFAULT_SIZES)}"
    hidden, intermediate, layers = (sizes[key] for key in _LLAMA_DEFAULT_SIZES)
    parameters = layers * (4 * hidden * hidden + 3 * hidden * intermediate)
    return None if parameters <= TINY_MODEL_MAX_PARAMETERS else f"{expected} (these make about {parameters:.2g})"


RULES: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "auto_generate": {
        "enabled": _bool,
        "source": _one_of(GENERATION_SOURCES),
        "host": _text,
        "port": PORT,
        "count": count(MAX_BATCH_RECORDS),
        "priority": _one_of(PRIORITIES),
        "threshold": count_from_zero(1_000_000),
        "seed": _SEED.or_null(),
        "cooldown_sec": count_from_zero(30 * DAY_SEC),
        "payload": _mapping_of("request fields"),
        "skill": _optional(_text),
        "generators": _references("Class", "my_generators:Countdown"),
    },
    "inference": {
        "model": _text,
        "timeout_sec": _TIMEOUT,
        "max_concurrency": count(1024),
        "max_attempts": count(100),
        "api_key_env": _text,
    },
    "skill_api": {
        "syllo_url": _http_url,
        "binary_url": _http_url,
        "timeout_sec": _TIMEOUT,
    },
    "gate": {
        "level": _one_of(("quick", "standard", "deep")),
        "eval_sets": _paths,
        "near_duplicate_threshold": FRACTION,
        "semantic_duplicate_threshold": FRACTION,
        "semantic_leakage_threshold": FRACTION,
        "verifiers": _mapping_of("skill: verifier name"),
        "quality_checks": _references("function", "my_checks:no_urls"),
        "min_completeness": FRACTION,
        "min_consistency": FRACTION,
        "min_validity": FRACTION,
        "min_overall": FRACTION,
        "max_record_bytes": count(1024**3),
        "max_batch_records": count(MAX_BATCH_RECORDS),
        "on_batch_failure": _policy_per_source,
        "engine": _one_of(GATE_ENGINES),
    },
    "ray": {
        "address": _optional(_text),
    },
    "inbox": {
        "settle_sec": non_negative_number("a number of seconds", DAY_SEC),
    },
    "dataset": {
        "name": _text,
        "description": _text,
    },
    "training": {
        "model_path": _optional(_text),
        "tokenizer_path": _optional(_text),
        "learning_rate": positive_number(10),
        "batch_size": count(4096),
        "max_length": count(131_072),
        "max_steps": _STEPS.or_null(),
        "min_examples": _RUN_EXAMPLES,
        "max_examples_per_run": _RUN_EXAMPLES.or_null(),
        "lora": _bool,
        "eval_per_level": count(100_000),
        "weight_decay": non_negative_number("a number", 10),
        "warmup_steps": count_from_zero(_STEPS.maximum),
        "lr_schedule": _one_of(LR_SCHEDULES),
        "epochs": count(10_000),
        "seed": _SEED,
        "device": _text,
        "lora_r": count(4096),
        "lora_alpha": count(65_536),
        "save_every": _STEPS.or_null(),
        "grad_clip": positive_number(1_000_000).or_null(),
        "tiny_model": _tiny_model,
    },
    "serving": {
        "host": _text,
        "port": PORT,
        "remote_host": _optional(remote_host_problem),
        "ssh_config": _optional(_text),
    },
    "api": {
        "host": _text,
        "port": PORT,
        "max_upload_bytes": count(16 * 1024**3),
        "client_connect_timeout_sec": _TIMEOUT,
        "client_read_timeout_sec": _TIMEOUT,
        "job_memory_reserve_mb": count(1024**3),
    },
    "storage": {
        "remote": _optional(_remote_url),
        "endpoint_url": _optional(_http_url),
        "push_checkpoints": _bool,
        "auto_push": _bool,
    },
    "collectors": {
        "git_repos": _paths,
        "docs": _paths,
        "conversation_logs": _paths,
        "max_commits": count(10_000_000),
    },
    "schedules": dict.fromkeys(SchedulesConfig.__dataclass_fields__, _cron),
    "labels": {
        "intents": _labels,
        "sentiments": _labels,
        "entity_labels": _labels,
        "personas": _labels,
        "intent_mapping": _label_mapping,
    },
    "profile": {
        "name": _optional(_text),
        "options": _mapping_of("option: value"),
    },
}
