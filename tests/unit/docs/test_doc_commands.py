"""Every ``bash`` block of the docs pages runs as written, or is exempt with its reason.

The blocks run in the site's page order, in one temp home with the embedded defaults and
in one working folder, each with ``bash -e`` so that any command of it failing fails the
test. What the pages take for granted is put there first, and only that: the files they
name (a GSM8K subset as ``gsm8k_train.alpaca.json``, a queue file, labelled examples for
``intents``, ``mapping.json``), the bucket ``s3://team-bucket`` on a real moto S3 server
and an OpenAI-compatible inference server (for ``--augment model``), both on 127.0.0.1. A block that is neither exempt nor passes fails, so a new example
either runs here or names why it cannot.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.fake_inference_server import fake_inference_server
from tests.support.fixture_data import GSM8K
from tests.support.object_stores import ObjectStoreServer

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)

EXEMPT = {
    ("development.md", "bash scripts/test.sh"): "the whole suite: CI runs it (.ci/run)",
    ("concepts/gate.md", "pip install 'tdm-dagster[semantic]'"): "installs a package extra; scripts/install.sh installs it and builds the model the semantic tests use",
    ("guides/first-batch.md", "bash scripts/quickstart.sh"): "makes a .venv and installs the project (minutes, network for the packages)",
    ("guides/first-batch.md", "TDM_HOME=$PWD/.tdm DAGSTER_HOME=$PWD/.tdm/dagster .venv/bin/dagster dev"): "a long-running UI on port 3000; tests/system/test_ui_browser.py runs dagster dev",
    ("guides/past-one-box.md", ".venv/bin/pip install -e '.[postgres]'"): "installs packages and creates a PostgreSQL role as the postgres user",
    ("guides/past-one-box.md", "dagster-webserver -w workspace.yaml -h 127.0.0.1 -p 3000"): "long-running webserver and daemon; tests/system/test_daemon_alerts.py runs them",
    ("guides/past-one-box.md", ".venv/bin/celery -A dagster_celery.app worker -Q inference -n inference@%h --concurrency 1 --prefetch-multiplier 1 --max-tasks-per-child 1 -l INFO"): "long-running Celery workers needing PostgreSQL and Redis; tests/system/test_boxes.py runs these very lines",
    ("guides/remote-storage.md", "tdm checkpoints push ckpt_20260101_120000_000000"): "names a trained checkpoint of another box; tests/unit/storage/ push and pull real ones",
    ("guides/rest-api.md", "tdm api keys create --scope read --name ci"): "starts tdm api in the background on its default port 8770 and uses a key it prints; tests/unit/api/ start it on free ports",
    ("guides/train-deploy.md", 'vllm serve "/srv/tdm/serving/$(cat /srv/tdm/serving/current)" --served-model-name tdm \\'): "vLLM and llama.cpp need a GPU box and are not installed",
}
"""(page, first command line) -> why that block cannot run on a test machine. Keep it short."""


def pages_in_site_order() -> list[str]:
    def walk(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from walk(value) if isinstance(value, list) else [value]

    return list(walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))


def blocks() -> list[tuple[str, str, str]]:
    """(page, first command line, block) for every bash block, in site order."""
    found = []
    for page in pages_in_site_order():
        for block in BLOCK.findall((DOCS / page).read_text(encoding="utf-8")):
            first = next(line for line in block.splitlines() if line.strip() and not line.startswith("#"))
            found.append((page, first.split("   #")[0].split("  #")[0].rstrip(), block))
    return found


def test_every_exemption_names_a_block_and_the_list_stays_short():
    keys = {(page, first) for page, first, _ in blocks()}
    assert set(EXEMPT) <= keys, set(EXEMPT) - keys
    assert len(EXEMPT) <= 10
    runnable = [key for key in keys if key not in EXEMPT]
    assert len(runnable) >= 5


def _prepare(work: Path, home: Path, bucket_env: dict[str, str], inference_url: str) -> dict[str, str]:
    """The files and state the pages' commands name, and the environment they run in."""
    rows = json.loads(GSM8K.read_text(encoding="utf-8"))
    (work / "gsm8k_train.alpaca.json").write_text(json.dumps(rows[:200]), encoding="utf-8")
    queue = home / "queue" / "normal"
    queue.mkdir(parents=True)
    chats = [
        {"messages": [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}],
         "metadata": {"skill": "gsm8k" if index % 2 else "gsm8k_hard"}}
        for index, row in enumerate(rows[200:260])
    ]  # fmt: skip
    chats += chats[:4]  # copies, which --dedup removes
    chats[5]["messages"][0]["content"] = chats[5]["messages"][0]["content"].replace(" ", "  ")  # which --clean re-spaces
    (queue / "demo_batch.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8")
    intents = [
        ("I want to fly from Boston to Denver on Friday", "book_flight", "neutral"),
        ("Please cancel my flight to Denver", "cancel_flight", "negative"),
        ("What is the weather in Boston tomorrow", "get_weather", "neutral"),
        ("The crew was wonderful, thank you", "praise", "positive"),
        ("My bag was lost and nobody helped", "complaint", "negative"),
        ("Book me a seat to Chicago on Monday", "book_flight", "neutral"),
        ("Cancel the Monday booking please", "cancel_flight", "neutral"),
        ("Will it rain in Denver on Friday", "get_weather", "neutral"),
    ]
    (work / "intents.jsonl").write_text(
        "".join(json.dumps({"text": t, "expected_intent": i, "expected_sentiment": s, "confidence": 0.9, "expected_entities": []}) + "\n" for t, i, s in intents),
        encoding="utf-8",
    )
    (work / "mapping.json").write_text(json.dumps({"praise": "feedback"}), encoding="utf-8")
    inference = urlsplit(inference_url)
    (home / "config.yaml").write_text(
        f"auto_generate: {{host: {inference.hostname}, port: {inference.port}}}\n"
        "training: {max_steps: 2, batch_size: 4, max_length: 128, min_examples: 1, eval_per_level: 1}\n"
        "labels: {intent_mapping: {cancel_flight: book_flight}}\n",
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TDM_", "AWS_", "DAGSTER_"))}
    env.update(bucket_env)
    env.update({"TDM_HOME": str(home), "NO_PROXY": "127.0.0.1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"})
    return env


def _run(env: dict[str, str], work: Path, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def s3():
    server = ObjectStoreServer.s3().start()
    try:
        server.filesystem().mkdir("team-bucket")
        yield server
    finally:
        server.kill()


def test_the_docs_commands_run_as_written(tmp_path, s3):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    with fake_inference_server(reply=_paraphrase) as (_, inference_url):
        _run_every_block(work, home, _prepare(work, home, s3.env(), inference_url))
    # what the examples did landed where the pages say
    assert (work / "splits").is_dir() and (work / "sft_hf").is_dir() and (work / "intents.spacy").is_file()
    assert any(s3.filesystem().find("team-bucket/tdm/datasets/sft"))


def _paraphrase(messages: list[dict]) -> str:
    """What the inference server answers ``--augment model``: the prompt, asked politely."""
    prompt = messages[-1]["content"]
    return "Please " + prompt[0].lower() + prompt[1:]


def _run_every_block(work: Path, home: Path, env: dict[str, str]) -> None:
    ran = []
    for page, first, block in blocks():
        if (page, first) in EXEMPT:
            continue
        if page == "guides/datasets.md" and first.startswith("tdm datasets derive intents"):
            prepared = _run(env, work, "tdm datasets create intents && tdm datasets add intents intents.jsonl")
            assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        done = _run(env, work, block)
        assert done.returncode == 0, f"{page}, block starting {first!r}, exit {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        ran.append((page, first))
    assert len(ran) >= 5
