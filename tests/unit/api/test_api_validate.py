"""``tdm validate`` through a running service (``TDM_API_URL``) and in-process give the
same report and exit status; an unreachable service means one line and in-process."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from tdm_dagster import cli
from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.generate.generators import get_generator
from tests.support.api_server import api_service, wait_warm
from tests.support.http_servers import refused_port


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_service(tmp_path_factory.mktemp("api-validate") / "home") as running:
        wait_warm(running)
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("to-validate")
    good, mixed, answers = folder / "good.jsonl", folder / "mixed.jsonl", folder / "answers.jsonl"
    records = get_generator("syllo").generate(1, 10, 7)
    atomic_write_jsonl(good, records)
    broken = [*records[:6], {"messages": [{"role": "user", "content": "hi"}]}, {"prompt": 3}, *records[6:]]
    atomic_write_jsonl(mixed, broken)
    answers.write_text('{"line": 1, "answer": "wrong"}\n{"line": 2 nope\n')
    return good, mixed, answers


def validate(*args, url=None, key=None):
    env = {"TDM_API_URL": url, "TDM_API_KEY": key}
    return CliRunner().invoke(cli.main, ["validate", *map(str, args)], env=env)


@pytest.mark.parametrize("options", [(), ("--level", "quick"), ("--level", "deep", "--spec", "chat_sft_v1")])
def test_same_report_and_exit_status_through_the_service(api, files, options):
    for path in files[:2]:
        here = validate(path, *options, "--json")
        there = validate(path, *options, "--json", url=api.url, key=api.keys["read"])
        assert there.exit_code == here.exit_code, there.output
        assert "in-process" not in there.output
        assert json.loads(there.stdout) == json.loads(here.stdout)
        assert json.loads(there.stdout)["file"] == str(path)
        assert validate(path, *options, url=api.url, key=api.keys["read"]).stdout == validate(path, *options).stdout
    assert validate(files[0], *options).exit_code == 0 and validate(files[1], *options).exit_code == 1


def test_parameter_errors_read_the_same(api, files):
    for flag, value in (("--spec", "nonsense_v9"), ("--answers", files[2])):
        here = validate(files[0], flag, value)
        there = validate(files[0], flag, value, url=api.url, key=api.keys["read"])
        assert here.exit_code == there.exit_code == 2
        assert there.output == here.output and f"Invalid value for {flag}" in there.output


def test_unreachable_service_falls_back_in_one_line(api, files):
    with refused_port() as url:
        fallback = validate(files[1], "--json", url=url, key=api.keys["read"])
    assert fallback.exit_code == 1
    notes = [line for line in fallback.stderr.splitlines() if line]
    assert len(notes) == 1 and notes[0].startswith(f"tdm api at {url} could not validate (ConnectError")
    assert notes[0].endswith("validating in-process")
    assert json.loads(fallback.stdout) == json.loads(validate(files[1], "--json").stdout)
    gone = validate(files[0], "nowhere.jsonl", url=api.url, key=api.keys["read"])
    assert gone.exit_code == 2  # too many arguments: click's usage error, not the service


def test_refused_key_is_an_error_not_a_fallback(api, files):
    for key in (None, "tdm_unknown", api.keys["write"]):
        refused = validate(files[0], url=api.url, key=key)
        assert refused.exit_code == 1 and f"tdm api at {api.url} refused" in refused.output
        assert "TDM_API_KEY" in refused.output and "in-process" not in refused.output


def test_validations_are_timed_in_metrics_and_ready(api, files):
    def count() -> float:
        text = httpx.get(api.url + "/metrics", headers=api.auth("read")).text
        found = [line for line in text.splitlines() if line.startswith('tdm_api_validate_seconds_count{level="quick"}')]
        return float(found[0].split()[-1]) if found else 0.0

    before = count()
    for _ in range(3):
        assert validate(files[0], "--level", "quick", url=api.url, key=api.keys["read"]).exit_code == 0
    assert count() == before + 3
    ready = httpx.get(api.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["gate_warm_seconds"] > 0


def test_leakage_against_uploaded_eval_files_reads_the_same(api, files):
    args = (files[1], "--level", "deep", "--against", files[0], "--json")
    here, there = validate(*args), validate(*args, url=api.url, key=api.keys["read"])
    assert there.exit_code == here.exit_code == 1
    report = json.loads(there.stdout)
    assert report == json.loads(here.stdout)
    assert any(issue["code"].startswith("leakage.") for issue in report["issues"])
