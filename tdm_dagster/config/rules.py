"""What each config.yaml key accepts: one check per key, section by section.

A check returns None for a good value, else what is expected ("a positive integer"),
which ``config.settings.validate_section`` puts into the error with the key, the value
and where it came from. The keys of a section are exactly its dataclass's fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tdm_dagster.config.sections import GATE_ENGINES, GENERATION_SOURCES, SchedulesConfig
from tdm_dagster.config.training import LR_SCHEDULES
from tdm_dagster.home import PRIORITIES
from tdm_dagster.serving.remote import remote_host_problem


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


def _mapping_of(what: str) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, dict) else f"a mapping of {what}"


def _positive_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return None if ok else "a positive number"


def _non_negative(what: str) -> Callable[[Any], str | None]:
    def non_negative(value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")
        return None if ok else f"{what} >= 0"

    return non_negative


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


def _remote_url(value: Any) -> str | None:
    from tdm_dagster.storage.remote import check_remote_url

    return check_remote_url(value)


RULES: dict[str, dict[str, Callable[[Any], str | None]]] = {
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
        "payload": _mapping_of("request fields"),
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
        "verifiers": _mapping_of("skill: verifier name"),
        "min_completeness": _fraction,
        "min_consistency": _fraction,
        "min_validity": _fraction,
        "min_overall": _fraction,
        "max_record_bytes": _positive_int,
        "max_batch_records": _positive_int,
        "engine": _one_of(GATE_ENGINES),
    },
    "ray": {
        "address": _optional(_text),
    },
    "inbox": {
        "settle_sec": _non_negative("a number of seconds"),
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
        "max_steps": _optional(_positive_int),
        "min_examples": _positive_int,
        "max_examples_per_run": _optional(_positive_int),
        "lora": _bool,
        "eval_per_level": _positive_int,
        "weight_decay": _non_negative("a number"),
        "warmup_steps": _non_negative_int,
        "lr_schedule": _one_of(LR_SCHEDULES),
        "epochs": _positive_int,
        "seed": _non_negative_int,
        "device": _text,
        "lora_r": _positive_int,
        "lora_alpha": _positive_int,
        "save_every": _optional(_positive_int),
        "grad_clip": _optional(_positive_number),
        "tiny_model": _mapping_of("LlamaConfig fields (hidden_size, num_hidden_layers, ...)"),
    },
    "serving": {
        "host": _text,
        "port": _port,
        "remote_host": _optional(remote_host_problem),
        "ssh_config": _optional(_text),
    },
    "api": {
        "host": _text,
        "port": _port,
        "max_upload_bytes": _positive_int,
    },
    "storage": {
        "remote": _optional(_remote_url),
        "endpoint_url": _optional(_http_url),
        "push_checkpoints": _bool,
    },
    "collectors": {
        "git_repos": _paths,
        "docs": _paths,
        "conversation_logs": _paths,
        "max_commits": _positive_int,
    },
    "schedules": dict.fromkeys(SchedulesConfig.__dataclass_fields__, _cron),
}
