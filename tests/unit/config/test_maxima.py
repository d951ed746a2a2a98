"""Every count, size, duration and seed of config.yaml has a maximum, refused with the
key, the value and the maximum, wherever the value comes from; the config reference (docs/reference/config.md) lists them.

The keys are found from the section types, not listed here: a new numeric key without
a maximum fails ``test_every_numeric_key_refuses_a_value_over_its_maximum``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

from tdm_dagster.config.quality import MAX_NGRAM, QualitySettings
from tdm_dagster.config.rules import TINY_MODEL_MAX_PARAMETERS
from tdm_dagster.config.settings import NUMERIC_KEYS, SECTIONS, ConfigError, TdmConfig, load_config, with_overrides

BIN = Path(sys.executable).parent
CONFIG_PAGE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "config.md"
HUGE = 10**30


def _numeric_keys() -> list[str]:
    """``section.key`` of every field typed int or float (or either, or None) in every section."""
    found = []
    for section in SECTIONS:
        for field in fields(getattr(TdmConfig(), section)):
            if re.fullmatch(r"(int|float)( \| None)?", str(field.type)):
                found.append(f"{section}.{field.name}")
    return found


NUMERIC = _numeric_keys()


def test_the_numeric_keys_are_found():
    assert len(NUMERIC) > 40
    assert {"auto_generate.count", "gate.max_record_bytes", "training.max_steps", "quality.max_tokens", "api.client_read_timeout_sec"} <= set(NUMERIC)


@pytest.mark.parametrize("key", NUMERIC)
def test_every_numeric_key_refuses_a_value_over_its_maximum(home, key):
    assert key in NUMERIC_KEYS, f"{key} has no maximum"
    maximum = NUMERIC_KEYS[key].maximum
    section, name = key.split(".")
    for value in (HUGE, maximum + 1):
        home.config_path.write_text(f"{section}:\n  {name}: {value}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as refused:
            load_config(home, environ={})
        message = str(refused.value)
        assert key in message and str(value) in message and str(maximum) in message, message
        assert "\n" not in message


@pytest.mark.parametrize("key", [key for key in NUMERIC if not key.startswith("quality.")])
def test_the_maximum_itself_is_accepted(home, key):
    section, name = key.split(".")
    home.config_path.write_text(f"{section}:\n  {name}: {NUMERIC_KEYS[key].maximum}\n", encoding="utf-8")
    assert getattr(getattr(load_config(home, environ={}), section), name) == NUMERIC_KEYS[key].maximum


def test_env_and_run_config_are_bounded_too(home):
    with pytest.raises(ConfigError, match=r"env TDM_GATE_MAX_BATCH_RECORDS: gate.max_batch_records is 10000001; expected a positive integer, at most 1000000"):
        load_config(home, environ={"TDM_GATE_MAX_BATCH_RECORDS": "10000001"})
    with pytest.raises(ConfigError, match=r"run config: auto_generate.count is 100000000000; expected a positive integer, at most 1000000"):
        with_overrides(TdmConfig(), "auto_generate", {"count": 100_000_000_000}, "run config")


@pytest.mark.parametrize("value", ["nan", "inf", ".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_refused(home, value):
    home.config_path.write_text(f"inference:\n  timeout_sec: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="inference.timeout_sec is"):
        load_config(home, environ={})


def test_quality_settings_built_directly_are_bounded():
    with pytest.raises(ValueError, match="quality.reply_min_words: 1000001 is not a whole number >= 1, at most 1000000"):
        QualitySettings(reply_min_words=1_000_001)
    with pytest.raises(ValueError, match=f"key {MAX_NGRAM + 1} is not an n-gram size from 2 to {MAX_NGRAM}"):
        QualitySettings(top_ngram_char_fracs={MAX_NGRAM + 1: 0.1})


@pytest.mark.parametrize(
    "tiny_model, refused",
    [
        ("{hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2}", False),
        ("{hidden_size: 32}", False),  # LlamaConfig's 32 layers of 11008: about 34M
        ("{hidden_size: 65536, intermediate_size: 128, num_hidden_layers: 2}", True),
        ("{num_hidden_layers: 1000000}", True),
        ("{hidden_size: 4096}", True),  # LlamaConfig's defaults: about 6.5e9
        ("{hidden_size: -4}", True),
    ],
)
def test_tiny_model_is_bounded_by_its_parameter_count(home, tiny_model, refused):
    home.config_path.write_text(f"training:\n  tiny_model: {tiny_model}\n", encoding="utf-8")
    if not refused:
        assert load_config(home, environ={}).training.tiny_model
        return
    with pytest.raises(ConfigError, match=f"training.tiny_model is .*at most {TINY_MODEL_MAX_PARAMETERS} parameters"):
        load_config(home, environ={})


def test_the_config_reference_lists_every_maximum():
    table = CONFIG_PAGE.read_text(encoding="utf-8").split("\n## Maxima\n", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, str] = {}
    for row in re.findall(r"^\| (`.*?) \| (.*?) \|", table, re.M):
        for key in re.findall(r"`([a-z_]+\.[a-z_]+)`", row[0]):
            listed[key] = row[1]
    stated = {key: str(check.maximum) for key, check in NUMERIC_KEYS.items() if not check.range_named}
    assert {key: listed.get(key) for key in stated} == stated
    assert listed["training.tiny_model"] == f"{TINY_MODEL_MAX_PARAMETERS} parameters"
    assert re.search(rf"^\| `quality.top_ngram_char_fracs` keys \| {MAX_NGRAM} \|", table, re.M)


def test_tdm_generate_refuses_an_absurd_count_at_once(home):
    """The issue's 7.9 GB: the flag is refused as it is parsed; nothing runs, nothing is written."""
    started = time.monotonic()
    done = subprocess.run([str(BIN / "tdm"), "generate", "--count", "100000000000", "--force"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--count': 100000000000 is above the maximum 1000000 of auto_generate.count" in done.stderr
    assert done.stdout == ""
    assert time.monotonic() - started < 60  # startup on a loaded machine; generating would take hours
    assert not home.batches_dir.exists() or not any(home.batches_dir.iterdir())
