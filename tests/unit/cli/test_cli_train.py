"""``tdm train`` when the run fails: exit 1, the cause in one line, and under ``--json``
one JSON object on stdout saying so."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tdm_dagster.cli import main


def test_a_failed_train_exits_1_with_a_json_object(home):
    result = CliRunner().invoke(main, ["train", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["success"] is False and data["error"] == "the training queue is empty: nothing to train on"
    assert data["key"].startswith("ckpt_") and data["run_id"]
    assert "Error: the training queue is empty" in result.stderr

    text = CliRunner().invoke(main, ["train"], catch_exceptions=False)
    assert text.exit_code == 1 and text.stdout == "" and "Error: the training queue is empty" in text.stderr
