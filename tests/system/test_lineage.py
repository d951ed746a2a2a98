"""Model -> data lineage on a real chain: a generated batch and an inbox file with one bad
record gated and queued, a tiny checkpoint trained on CPU on all of the first and, at the
run's example budget, part of the second, evaluated and deployed (all through Dagster, as
`tdm` runs them); then `tdm lineage` back from the checkpoint to the records and forward from
a record and a batch to the checkpoint, `GET /v1/lineage/...` from a real `tdm api`
process, and the chain kept by a checkpoint pushed to and pulled from a real moto S3."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.files.atomic import atomic_write_jsonl, read_jsonl
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.home import TdmHome
from tdm_dagster.training.checkpoints import list_checkpoints
from tests.support.api_server import api_process
from tests.support.dagster_processes import free_port
from tests.support.object_stores import ObjectStoreServer, use


def tdm(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def tdm_json(*args: str) -> dict:
    return json.loads(tdm(*args, "--json").stdout)


BUDGET = 36
"""training.max_examples_per_run: the generated batch's 24, then 12 of the inbox batch's."""
BAD_LINE = 5
"""The inbox file's record with an empty reply: rejected by the gate, never trained on."""


@dataclass(frozen=True)
class Chain:
    root: Path
    home: TdmHome
    batches: list[str]
    """The generated batch, then the inbox batch."""
    inbox_file: str
    checkpoint: str
    """``RUN/checkpoint-N``."""
    deployed_name: str


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TDM_"):
                patch.delenv(name)
        home = TdmHome(root / "home").ensure()
        patch.setenv("TDM_HOME", str(home.root))
        dagster_home = root / "dagster-home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        home.config_path.write_text(
            "auto_generate:\n  skill: binary\n"
            "training:\n  max_steps: 4\n  min_examples: 8\n  batch_size: 8\n  max_length: 128\n  eval_per_level: 2\n"
            f"  max_examples_per_run: {BUDGET}\n"
            f"serving:\n  host: 127.0.0.1\n  port: {free_port()}\n"  # nothing listens: deployed unverified
            "inbox:\n  settle_sec: 0\n"
        )
        generated = tdm_json("generate", "--force", "--count", "24", "--seed", "3")["batch_id"]
        records = get_generator("binary").generate(3, 24, 11)
        records[BAD_LINE - 1]["messages"][-1]["content"] = ""
        atomic_write_jsonl(home.inbox_dir / "corrections.jsonl", records)
        [ingested] = json.loads(tdm("ingest", "--json").stdout)
        assert ingested["queued"], ingested
        trained = tdm_json("train")
        tdm_json("evaluate")
        deployed = json.loads(tdm("deploy", "--json").stdout)
        assert deployed["deployed"] is True, deployed
        made = Path(trained["path"])
        assert [c.path for c in list_checkpoints(made.parent.parent)] == [made]
        yield Chain(root, home, [generated, ingested["batch_id"]], "corrections.jsonl", f"{made.parent.parent.name}/{made.name}", deployed["name"])


def _approved_lines(home: TdmHome, batch_id: str) -> list[int]:
    """The batch's approved records' lines, from the gate's own files (not from lineage)."""
    return [row["line"] for row in read_jsonl(home.batch_dir(batch_id) / "scores.jsonl")]


def _trained_lines(chain: Chain) -> list[list[int]]:
    """Per batch, the lines the run took (in queue order, up to the budget), from the gate's files."""
    generated, inbox = (_approved_lines(chain.home, batch) for batch in chain.batches)
    assert BAD_LINE not in inbox and len(generated) + len(inbox) > BUDGET
    return [generated, inbox[: BUDGET - len(generated)]]


def _check_back_to_the_records(found: dict, chain: Chain) -> None:
    home = chain.home
    assert found["checkpoint"] == chain.checkpoint and found["recorded"] is True
    assert [b["batch_id"] for b in found["batches"]] == chain.batches
    for batch, lines in zip(found["batches"], _trained_lines(chain)):
        assert batch["record_ids"] == [f"{batch['batch_id']}:{line}" for line in lines]
        assert batch["records"] == batch["examples"] == len(lines) and batch["unmatched"] == 0
        report = home.report_file(batch["batch_id"])
        assert batch["gate"]["report"] == str(report) and batch["gate"]["level"] == "standard"
        assert batch["gate"]["report_sha256"] == hashlib.sha256(report.read_bytes()).hexdigest()
        assert len(batch["gate"]["config_hash"]) == 16 and batch["gate"]["overall_pass"] is True
    plan = json.loads((home.batch_dir(chain.batches[0]) / "batch.json").read_text())
    assert found["batches"][0]["source"] == {"kind": "generator", "generator": "builtin", "skill": "binary",
                                             "level": plan["level"], "seed": plan["seed"], "count": 24, "spec": plan["spec"]}
    inbox = found["batches"][1]["source"]
    assert inbox["kind"] == "inbox" and Path(inbox["file"]).name == chain.inbox_file and inbox["first_record"] == 1
    assert found["records"] == found["examples"] == BUDGET


def test_a_checkpoint_leads_back_to_its_records_and_a_record_forward_to_it(chain):
    found = tdm_json("lineage", chain.checkpoint)
    _check_back_to_the_records(found, chain)
    assert found["evaluation"]["overall_accuracy"] is not None
    [deployment] = found["deployments"]
    assert (deployment["name"], deployment["outcome"], deployment["serving_now"]) == (chain.deployed_name, "deployed", True)
    # the same answer by the run's key alone, and for what is deployed
    assert tdm_json("lineage", chain.checkpoint.split("/")[0])["batches"] == found["batches"]
    assert tdm_json("lineage", "deployed")["batches"] == found["batches"]
    # the archive's manifest holds the same chain
    manifest = next((chain.home.trained_archive_dir).glob("*/manifest.json"))
    assert json.loads(manifest.read_text())["lineage"]["batches"] == [
        {key: value for key, value in batch.items() if key not in {"records", "record_ids"}} for batch in found["batches"]
    ]

    text = tdm("lineage", chain.checkpoint).stdout
    assert f"checkpoint {chain.checkpoint}" in text and f"batch {chain.batches[0]} (normal): generator builtin" in text
    assert f"batch {chain.batches[1]} (normal): inbox file " in text
    assert "(serving now)" in text

    record = found["batches"][1]["record_ids"][-1]
    forward = tdm_json("lineage", "--record", record)
    assert [c["checkpoint"] for c in forward["checkpoints"]] == [chain.checkpoint] and forward["serving_now"] == [chain.checkpoint]
    affected = tdm_json("lineage", "--batch", chain.batches[0])
    assert affected["serving_now"] == [chain.checkpoint]
    assert affected["checkpoints"][0]["records_from_batch"] == found["batches"][0]["records"]
    assert "1 checkpoint(s) trained on batch" in tdm("lineage", "--batch", chain.batches[0]).stdout


def test_dagster_shows_the_batches_on_the_checkpoint_and_the_deployed_model(chain):
    instance = dg.DagsterInstance.get()  # the chain's DAGSTER_HOME
    run, _ = chain.checkpoint.split("/")
    for asset in ("checkpoint", "deployed_model"):
        metadata = instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata
        assert metadata["trained_on_batch_ids"].value == chain.batches and metadata["trained_on_records"].value == BUDGET
        table = metadata["trained_on_batches"].value
        assert all(f"[{batch}](/assets/queued_batch?view=partitions&partition={batch})" in table for batch in chain.batches)
        assert "| generator |" in table and "| inbox |" in table
    assert metadata["trained_checkpoint"].value == f"[{run}](/assets/checkpoint?view=partitions&partition={run})"


def test_what_no_checkpoint_trained_on_and_bad_names(chain):
    inbox = chain.batches[1]
    assert tdm_json("lineage", "--record", f"{inbox}:{BAD_LINE}")["checkpoints"] == []  # rejected by the gate
    left_queued = _approved_lines(chain.home, inbox)[BUDGET - 24]  # over the run's budget: still in the queue
    assert tdm_json("lineage", "--record", f"{inbox}:{left_queued}")["checkpoints"] == []
    last_trained = _approved_lines(chain.home, inbox)[BUDGET - 24 - 1]
    assert [c["checkpoint"] for c in tdm_json("lineage", "--record", f"{inbox}:{last_trained}")["checkpoints"]] == [chain.checkpoint]
    assert "no checkpoint was trained on batch nobody" in tdm("lineage", "--batch", "nobody").stdout
    missing = tdm("lineage", "ckpt_none", ok=False)
    assert missing.exit_code == 1 and "no checkpoint 'ckpt_none'" in missing.output
    bad = tdm("lineage", "--record", "no-line", ok=False)
    assert bad.exit_code == 2 and "is not a record id BATCH:LINE" in bad.output
    assert tdm("lineage", ok=False).exit_code == 2


def test_the_api_answers_lineage_in_read_scope(chain):
    with api_process(chain.root) as api:  # `tdm api` over the chain's home (folder/home)
        url = f"{api.url}/v1/lineage/{chain.checkpoint}"
        assert httpx.get(url, timeout=30).status_code == 401
        answer = httpx.get(url, headers=api.auth("read"), timeout=60)
        assert answer.status_code == 200, answer.text
        _check_back_to_the_records(answer.json(), chain)
        deployed = httpx.get(f"{api.url}/v1/lineage/deployed", headers=api.auth("read"), timeout=60).json()
        assert deployed["checkpoint"] == chain.checkpoint
        record = answer.json()["batches"][0]["record_ids"][0]
        batch, line = record.rsplit(":", 1)
        forward = httpx.get(f"{api.url}/v1/lineage", params={"batch": batch, "line": line}, headers=api.auth("read"), timeout=60).json()
        assert forward["serving_now"] == [chain.checkpoint]
        outside = httpx.get(f"{api.url}/v1/lineage/{chain.home.root.parent}", headers=api.auth("read"), timeout=60)
        assert outside.status_code == 404 and "no checkpoint" in outside.json()["detail"]


def test_a_pulled_checkpoint_keeps_its_lineage(chain, tmp_path):
    server = ObjectStoreServer.s3().start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            url = use(server, patch)
            run, name = chain.checkpoint.split("/")
            trainer = tdm_json("lineage", chain.checkpoint)
            tdm("checkpoints", "push", run, "--remote", url)
            serving = TdmHome(tmp_path / "serving-box").ensure()  # a fresh box: no batches, no reports
            patch.setenv("TDM_HOME", str(serving.root))
            tdm("checkpoints", "pull", run, "--remote", url)
            pulled = tdm_json("lineage", chain.checkpoint)
    finally:
        server.kill()
    assert pulled["checkpoint"] == chain.checkpoint and pulled["path"] == str(serving.training_dir / run / "checkpoints" / name)
    assert pulled["batches"] == trainer["batches"] and pulled["records"] == trainer["records"]
    assert pulled["evaluation"] is None and pulled["deployments"] == []  # those stay on the trainer box
