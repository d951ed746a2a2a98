"""The whole loop on CPU: generate -> gate -> queue -> train -> checkpoint -> evaluate ->
deploy -> `tdm serve` answering the official openai client -> curriculum updated."""

import json

import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.generate.curriculum import CurriculumState, curriculum_path
from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.training.checkpoints import list_checkpoints
from tests.support.http_servers import running_server

openai = pytest.importorskip("openai")


def tdm(*args):
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_generate_to_serve(home, dagster_home, monkeypatch):
    home.config_path.write_text(
        "auto_generate:\n  skill: binary\n"
        "training:\n  max_steps: 40\n  min_examples: 16\n  batch_size: 8\n  max_length: 256\n  eval_per_level: 3\n"
    )
    generated = tdm("generate", "--force", "--count", "48", "--seed", "3")
    assert generated["queued"] and generated["approved"] >= 40

    trained = tdm("train")
    assert trained["final_loss"] < trained["first_loss"]  # it learned something
    assert trained["queue_files"] == [f"normal/{generated['batch_id']}.jsonl"]
    assert not list(home.queue_dir("normal").glob("*.jsonl"))  # consumed, archived
    archived = list((home.root / "archive" / "trained").glob("*/manifest.json"))
    assert len(archived) == 1
    assert list_checkpoints(home.root / "training" / json.loads(archived[0].read_text())["checkpoint"].split("__")[0])

    evaluated = tdm("evaluate")
    assert 0.0 <= evaluated["overall_accuracy"] <= 1.0 and evaluated["held_out_loss"] > 0
    assert evaluated["held_out_seen_in_training"] == 0  # accuracy measures learning, not memory
    assert sorted(p.name for p in home.eval_sets_dir.iterdir()) == ["heldout_binary_level1.jsonl", "heldout_syllo_level1.jsonl"]
    state = CurriculumState.load(curriculum_path(home))
    assert state.history["binary"], "the evaluation reached the curriculum"

    from tdm_dagster.serving.server import create_app

    # the server on a free port, named in the config: deploy reloads and verifies it (never
    # whatever `tdm serve` may run on the default port)
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "end-to-end-admin-token")
    with running_server(create_app(home.serving_dir)) as url:
        with home.config_path.open("a") as config:
            config.write(f"serving:\n  host: 127.0.0.1\n  port: {url.rsplit(':', 1)[1]}\n")
        deployed = tdm("deploy")
        assert deployed["deployed"] is True and deployed["reason"] == "deployed and verified", deployed

        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        [model] = client.models.list().data
        reply = client.chat.completions.create(
            model=model.id, messages=[{"role": "user", "content": "What is 101 + 11 in binary?"}], max_tokens=8, temperature=0
        )
        assert model.id == deployed["name"]
    assert reply.choices[0].message.content is not None
    assert reply.usage.completion_tokens >= 1
