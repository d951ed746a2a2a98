"""Your own skill generators, registered the three ways verifiers and record checks are:
the decorator, ``auto_generate.generators`` in config, and an installed distribution's
entry point (a real ``.dist-info`` on ``sys.path``, in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tdm_dagster.config.settings import ConfigError, load_config
from tdm_dagster.generate.generators import GeneratorError, get_generator, register_generator, skill_names, unregister_generator
from tdm_dagster.home import TdmHome

REPO_ROOT = Path(__file__).resolve().parents[3]
COUNTDOWN = '''
class Countdown:
    """Count down from a number: deterministic, and its answers check themselves."""
    skill = "countdown"
    spec = "chat"
    max_level = 3

    def generate(self, level, count, seed, progress=None):
        start = [seed + i + level for i in range(count)]
        return [{"messages": [{"role": "user", "content": f"Count down from {n} to {n - 3}."},
                              {"role": "assistant", "content": " ".join(str(n - k) for k in range(4))}],
                 "metadata": {"skill": "countdown", "level": level, "seed": seed + i, "answer": n, "source": "builtin"}}
                for i, n in enumerate(start)]

    def check_answer(self, example, response):
        n = example["metadata"]["answer"]
        return response.split() == [str(n - k) for k in range(4)]

    def example_key(self, example):
        return str(example["metadata"].get("answer"))
'''


def _site(tmp_path: Path, entry_points: str | None = None) -> Path:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "acme_generators.py").write_text(COUNTDOWN, encoding="utf-8")
    if entry_points is not None:
        info = site / "acme_generators-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-generators\nVersion: 0.1\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return site


def _in_fresh_interpreter(site: Path, program: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(program)], env=environment, capture_output=True, text=True, timeout=120)


GENERATE_AND_CHECK = """
    import json
    from tdm_dagster.generate.generators import get_generator, skill_names
    generator = get_generator("Countdown")
    example = generator.generate(1, 2, 10)[0]
    print(json.dumps([skill_names(), example["messages"][1]["content"], generator.check_answer(example, "11 10 9 8")]))
"""


def test_a_generator_registered_by_an_entry_point_of_an_installed_distribution(tmp_path):
    site = _site(tmp_path, "[tdm_dagster.generators]\ncountdown = acme_generators:Countdown\n")
    done = _in_fresh_interpreter(site, GENERATE_AND_CHECK)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [["syllo", "binary", "countdown"], "11 10 9 8", True]


def test_an_entry_point_that_does_not_load_is_named(tmp_path):
    site = _site(tmp_path, "[tdm_dagster.generators]\ncountdown = acme_generators:Missing\n")
    done = _in_fresh_interpreter(site, GENERATE_AND_CHECK)
    assert done.returncode != 0
    assert "entry point 'countdown' (acme_generators:Missing) in group tdm_dagster.generators: cannot load: AttributeError" in done.stderr


def test_a_generator_named_in_config_as_module_and_class(tmp_path):
    site = _site(tmp_path)
    home = TdmHome(tmp_path / "home").ensure()
    home.config_path.write_text("auto_generate:\n  generators: ['acme_generators:Countdown']\n", encoding="utf-8")
    done = _in_fresh_interpreter(site, GENERATE_AND_CHECK, {"TDM_HOME": str(home.root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])[1:] == ["11 10 9 8", True]
    home.config_path.write_text("auto_generate:\n  generators: ['acme_generators.Countdown']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match='auto_generate.generators is .*"module:Class" references'):
        load_config(home, environ={})


def test_a_generator_registered_by_the_decorator_and_a_taken_name_refused():
    namespace: dict = {}
    exec(COUNTDOWN, namespace)  # the class as a user's module defines it
    countdown = namespace["Countdown"]
    register_generator("countdown")(countdown)
    try:
        assert "countdown" in skill_names() and get_generator(" COUNTDOWN").check_answer(get_generator("countdown").generate(0, 1, 5)[0], "5 4 3 2")
        with pytest.raises(ValueError, match="a generator named 'countdown' is already registered"):
            register_generator("countdown")(type("Other", (countdown,), {}))
        register_generator("syllo")(countdown)
        with pytest.raises(GeneratorError, match="two generators are called 'syllo'"):
            get_generator("binary")
    finally:
        unregister_generator("countdown")
        unregister_generator("syllo")
    assert "countdown" not in skill_names()


def test_a_class_that_is_not_a_generator_is_named():
    register_generator("not_one")(dict)
    try:
        with pytest.raises(GeneratorError, match="generator 'not_one': a dict is not a skill generator"):
            get_generator("syllo")
    finally:
        unregister_generator("not_one")
