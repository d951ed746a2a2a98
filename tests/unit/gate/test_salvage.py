"""Salvage (``gate.on_batch_failure``): the policy key, and what a salvaged outcome says
about the batch and each record it keeps."""

import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.config.settings import ConfigError, TdmConfig, load_config
from tdm_dagster.gate.outcome import score_rows
from tdm_dagster.gate.run import GateInput, run_gate
from tdm_dagster.gate.salvage import SALVAGED, batch_source, on_batch_failure, salvaged


def sums(count: int, copies: int) -> list[dict]:
    """``count`` distinct sums whose replies a verifier checks against a reference answer,
    then the first ``copies`` of them again (exact duplicates fail the batch's diversity)."""
    records = [
        {
            "messages": [
                {"role": "user", "content": f"Tom has {n} apples and buys {n + 3} more at the market. How many apples does he have now?"},
                {"role": "assistant", "content": f"He had {n} and bought {n + 3}, so he has {n} + {n + 3} = {2 * n + 3} apples. The answer is {2 * n + 3}."},
            ],
            "metadata": {"skill": "arithmetic", "reference_answer": str(2 * n + 3)},
        }
        for n in range(count)
    ]
    return records + records[:copies]


def gated(records: list[dict]):
    return run_gate(GateInput.from_records(records, "chat_sft_v1", "sums"), TdmConfig(), level="standard")


def test_a_salvaged_record_says_so_and_cannot_be_gold():
    clean = gated(sums(60, 0))
    assert clean.batch_approved and clean.report["tiers"]["gold"] == 60  # verified replies are gold in a passing batch
    records = sums(60, 6)
    failed = gated(records)
    assert not failed.batch_approved and failed.approved_indices == []
    kept = salvaged(failed, records, "import")
    assert kept.approved_indices == kept.salvaged == list(range(60))
    assert sorted(kept.rejected) == list(range(60, 66))
    assert all(issue.code == "diversity.duplicate_example" for issue in kept.rejected[60][:1])  # their own reason first, kept
    report = kept.report
    assert report["overall_pass"] is False and "diversity" in report["batch_failure"]
    assert report["recommendation"].startswith("salvage: 60 of 66 records kept, 6 rejected; the batch failed: failed checks: diversity")
    assert report["salvage"] == {"policy": "gate.on_batch_failure.import: salvage", "batch_failure": report["batch_failure"],
                                 "salvaged": 60, "rejected": 6}  # fmt: skip
    assert report["records"] == {**report["records"], "approved": 60, "rejected": 6, "salvaged": 60}
    assert report["tiers"] == {"gold": 0, "silver": 60, "bronze": 0, "raw": 0}  # one tier down: verified but salvaged
    assert report["warnings"][SALVAGED] == 60
    rows = score_rows(kept)
    assert all(row["salvaged"] and row["verified"] and row["tier"] == "silver" and SALVAGED in row["warnings"] for row in rows)
    assert not any(row["salvaged"] for row in score_rows(clean))
    assert "failed checks: diversity" in next(i for i in kept.issues[0] if i.code == SALVAGED).message


def test_reject_keeps_the_batch_rejected_and_a_passing_batch_is_untouched():
    records = sums(40, 4)
    failed = gated(records)
    assert on_batch_failure(failed, records, "generated", "reject") is failed
    clean = gated(sums(40, 0))
    assert on_batch_failure(clean, sums(40, 0), "inbox", "salvage") is clean
    with pytest.raises(ValueError, match="'elsewhere' is not one of generated, skill_api, inbox, import"):
        on_batch_failure(failed, records, "elsewhere", "salvage")


def test_plan_sources_map_to_policy_sources():
    assert [batch_source(s) for s in ("builtin", "inference", "skill_api", "inbox")] == ["generated", "generated", "skill_api", "inbox"]


def test_defaults_and_a_partial_mapping(home):
    assert load_config(home).gate.on_batch_failure == {"generated": "reject", "skill_api": "reject", "inbox": "salvage", "import": "salvage"}
    home.config_path.write_text("gate:\n  on_batch_failure:\n    inbox: reject\n    generated: salvage\n")
    assert load_config(home).gate.on_batch_failure == {"generated": "salvage", "skill_api": "reject", "inbox": "reject", "import": "salvage"}


@pytest.mark.parametrize(
    "value, problem",
    [
        ("{imports: salvage}", "'imports' is no source"),
        ("{inbox: keep}", "inbox: 'keep' is neither"),
        ("salvage", "expected a mapping of source (generated, skill_api, inbox, import) to reject or salvage"),
    ],
)
def test_the_policy_key_is_validated(home, value, problem):
    home.config_path.write_text(f"gate:\n  on_batch_failure: {value}\n")
    with pytest.raises(ConfigError, match="gate.on_batch_failure is") as refused:
        load_config(home)
    assert problem in str(refused.value)
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 2 and "gate.on_batch_failure" in result.output and problem in result.output


def test_the_queue_recheck_respects_the_batch_sources_choice(home):
    """A salvaged batch whose kept records fail a batch check again (half the replies the
    same) stays queued when its source salvages, and is held when it rejects."""
    from tdm_dagster.queue.recheck import recheck_queue
    from tdm_dagster.queue.store import TrainingQueue
    from tdm_dagster.records.batches import BatchPlan, BatchStore

    def chat(n: int) -> dict:
        reply = "It is a large city with a long history and many museums to visit." if n % 2 else f"City {n} has a river, a cathedral and an old market square."
        return {"messages": [{"role": "user", "content": f"Tell me about the city number {n} in the list of capitals."},
                             {"role": "assistant", "content": reply}]}  # fmt: skip

    for batch_id, source in (("inbox_cities_1", "inbox"), ("syllo_autogen_1", "builtin")):
        plan = BatchPlan(batch_id, "cities", 1, 40, 0, source, "normal", "chat_sft_v1", "2026-01-01T00:00:00+00:00")
        BatchStore(home).save_generated(plan, [])
        TrainingQueue(home).enqueue(batch_id, [chat(n) for n in range(40)], "normal")
    verdicts = {v.batch_id: v.verdict for v in recheck_queue(home, load_config(home)).files}
    assert verdicts == {"inbox_cities_1": "passed", "syllo_autogen_1": "held"}
    assert len((home.queue_dir("normal") / "inbox_cities_1.jsonl").read_text().splitlines()) == 40
