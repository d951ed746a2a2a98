import pytest

from tdm_dagster.config import ConfigError, load_config, with_overrides


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
