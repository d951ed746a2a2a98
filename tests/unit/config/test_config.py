import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tdm_dagster.config.sections import InferenceConfig
from tdm_dagster.config.settings import (
    MAX_CONFIG_BYTES,
    SECRET_ENV_VARS,
    ConfigError,
    load_config,
    with_overrides,
)
from tdm_dagster.serving import ADMIN_TOKEN_ENV


def write_config(home, text):
    home.config_path.write_text(text, encoding="utf-8")


def test_defaults_without_a_file(home):
    config = load_config(home, environ={})
    assert config.auto_generate.priority == "normal"
    assert config.auto_generate.enabled is True
    assert config.source == "defaults"
    assert config.inference_base_url == "http://127.0.0.1:8765"


def test_file_values_and_env_overrides(home):
    write_config(home, "auto_generate:\n  count: 50\n  priority: high\n  payload: {temperature: 0.2}\n")
    config = load_config(home, environ={"TDM_AUTO_GENERATE_COUNT": "7", "TDM_AUTO_GENERATE_ENABLED": "false"})
    assert config.auto_generate.count == 7  # env beats file
    assert config.auto_generate.priority == "high"
    assert config.auto_generate.enabled is False
    assert config.auto_generate.payload == {"temperature": 0.2}
    assert config.source == str(home.config_path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("auto_generate:\n  priority: urgent\n", "auto_generate.priority is 'urgent'; expected one of high, normal, low"),
        ("auto_generate:\n  count: -3\n", "auto_generate.count is -3; expected a positive integer"),
        ("auto_generate:\n  port: 70000\n", "auto_generate.port is 70000; expected an integer port between 1 and 65535"),
        ("auto_generate:\n  enabeld: true\n", "unknown key auto_generate.enabeld; allowed keys: enabled"),
        ("auto_generate:\n  source: cloud\n", "expected one of builtin, skill_api, inference"),
        ("training:\n  lr_schedule: exponential\n", "expected one of constant, linear, cosine"),
        ("autogen:\n  count: 1\n", "unknown section 'autogen'"),
        ("auto_generate: [1, 2]\n", "section auto_generate must be a mapping"),
        ("auto_generate:\n  count: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_file_names_key_and_allowed_values(home, text, expected):
    write_config(home, text)
    with pytest.raises(ConfigError) as info:
        load_config(home, environ={})
    assert expected in str(info.value)
    assert str(home.config_path) in str(info.value) or "autogen" in text or "not valid" in expected


def test_invalid_env_value_names_the_variable(home):
    with pytest.raises(ConfigError, match="env TDM_AUTO_GENERATE_PRIORITY: auto_generate.priority is 'soon'"):
        load_config(home, environ={"TDM_AUTO_GENERATE_PRIORITY": "soon"})


def test_invalid_quality_value_is_reported(home):
    write_config(home, "quality:\n  min_pass_rate: 1.5\n")
    with pytest.raises(ConfigError, match="min_pass_rate"):
        load_config(home, environ={})


def test_run_config_overrides_are_checked_too(home):
    config = load_config(home, environ={})
    updated = with_overrides(config, "auto_generate", {"count": 3, "seed": None}, "run config")
    assert updated.auto_generate.count == 3
    assert updated.auto_generate.seed is None
    with pytest.raises(ConfigError, match="run config: auto_generate.priority is 'top'"):
        with_overrides(config, "auto_generate", {"priority": "top"}, "run config")


def test_tdm_config_env_points_at_another_file(home, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("auto_generate:\n  threshold: 9\n", encoding="utf-8")
    config = load_config(home, environ={"TDM_CONFIG": str(other)})
    assert config.auto_generate.threshold == 9


# --- secrets in the environment, hostile config files ----------------------------------

SECRET_VALUE = "sk-test-3f9a1c-never-print-me"


def _tdm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "tdm"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_secret_env_vars_are_not_config_keys_and_never_printed(home, tmp_path):
    env = {**os.environ, "TDM_INFERENCE_API_KEY": SECRET_VALUE, "TDM_SERVING_ADMIN_TOKEN": SECRET_VALUE + "-admin"}
    for args in (("config",), ("config", "--json"), ("status",), ("status", "--json")):
        completed = _tdm(*args, env=env)
        assert completed.returncode == 0, (args, completed.stderr[-2000:])
        assert SECRET_VALUE not in completed.stdout + completed.stderr, args
    described = json.loads(_tdm("config", "--json", env=env).stdout)
    assert described["inference"]["api_key_env"] == "TDM_INFERENCE_API_KEY"
    assert "api_key" not in described["inference"] and "admin_token" not in described["serving"]

    # the code location loads with the key set, and passes it on as an EnvVar
    code = ("import tdm_dagster.definitions as d; r = d.defs.resources['inference'];"
            "print(type(r.api_key).__name__, r.api_key.env_var_name)")
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["EnvVar", "TDM_INFERENCE_API_KEY"]
    assert SECRET_VALUE not in completed.stdout + completed.stderr


def test_unknown_env_keys_are_still_refused_without_showing_their_value(home):
    for name in ("TDM_INFERENCE_API_KEYS", "TDM_SERVING_ADMIN_TOKENS", "TDM_INFERENCE_TOKEN"):
        with pytest.raises(ConfigError) as info:
            load_config(home, environ={name: SECRET_VALUE})
        assert f"env {name}: unknown key" in str(info.value)
        assert SECRET_VALUE not in str(info.value)
    assert set(SECRET_ENV_VARS) == {InferenceConfig().api_key_env, ADMIN_TOKEN_ENV}
    assert load_config(home, environ=dict.fromkeys(SECRET_ENV_VARS, SECRET_VALUE)).source == "defaults"


def _billion_laughs(levels: int = 10) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "auto_generate:\n  payload:\n" + "\n".join("    " + line for line in lines) + "\n"


_MEASURE = """
import resource, sys, time
from pathlib import Path
from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.home import TdmHome
home = TdmHome(Path(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    load_config(home, environ={})
    print("LOADED")
except ConfigError as exc:
    print("ERROR", exc)
print("SECONDS", time.monotonic() - started)
print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("billion laughs", "YAML aliases (*a0) are not allowed"),
        ("alias to a mapping", "YAML aliases"),
        ("deep nesting", "nesting is too deep"),
        ("over the size cap", f"larger than {MAX_CONFIG_BYTES} bytes"),
    ],
)
def test_hostile_config_file_refused_early_with_bounded_memory(home, kind, expected):
    texts = {
        "billion laughs": _billion_laughs(),
        "alias to a mapping": "auto_generate:\n  payload: &p {a: 1}\ngate:\n  eval_sets: *p\n",
        "deep nesting": "auto_generate:\n  payload: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "over the size cap": "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1),
    }
    home.config_path.write_text(texts[kind], encoding="utf-8")
    completed = subprocess.run([sys.executable, "-c", _MEASURE, str(home.root)],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = dict(line.split(" ", 1) for line in completed.stdout.splitlines())
    assert out["ERROR"].startswith(f"{home.config_path}: "), out
    assert expected in out["ERROR"], out
    assert len(out["ERROR"]) < 1000
    assert float(out["SECONDS"]) < 5
    assert int(out["GROWTH_KB"]) < 300 * 1024  # bounded memory, whatever the file expands to


def test_yaml_env_override_values_refuse_aliases_too(home):
    with pytest.raises(ConfigError, match="env TDM_AUTO_GENERATE_PAYLOAD: cannot parse .*aliases"):
        load_config(home, environ={"TDM_AUTO_GENERATE_PAYLOAD": "{a: &x [1, 2], b: *x}"})


@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("auto_generate:\n  count: 5\n  priority: high\n  count: 500\n", "'count'", (2, 4)),
        ("auto_generate:\n  count: 5\ngate:\n  level: quick\nauto_generate:\n  priority: high\n", "'auto_generate'", (1, 5)),
        ("training:\n  tiny_model: {hidden_size: 32, hidden_size: 64}\n", "'hidden_size'", (2, 2)),
        ("gate:\n  verifiers:\n    gsm8k: a\n    gsm8k: b\n", "'gsm8k'", (3, 4)),
        ("quality:\n  top_ngram_char_fracs:\n    2: 0.2\n    2: 0.3\n", "2", (3, 4)),
    ],
)
def test_duplicate_keys_are_refused_with_both_lines(home, text, key, lines):
    """PyYAML keeps the last of two equal keys; which one was meant is unknowable."""
    write_config(home, text)
    with pytest.raises(ConfigError) as refused:
        load_config(home, environ={})
    assert str(refused.value) == f"{home.config_path}: duplicate key {key} at lines {lines[0]} and {lines[1]}; keep one"


def test_duplicate_keys_in_an_env_override_are_refused(home):
    with pytest.raises(ConfigError, match=r"env TDM_AUTO_GENERATE_PAYLOAD: cannot parse .*duplicate key 'a' at lines 1 and 1"):
        load_config(home, environ={"TDM_AUTO_GENERATE_PAYLOAD": "{a: 1, a: 2}"})


def test_distinct_keys_that_look_alike_are_kept(home):
    write_config(home, "gate:\n  verifiers: {'1': a, 1: b, gsm8k: c, GSM8K: d}\n")
    assert load_config(home, environ={}).gate.verifiers == {"1": "a", 1: "b", "gsm8k": "c", "GSM8K": "d"}
