"""Routine outcomes read as routine: a rejected batch or a generation that fails for a
named reason prints a summary, not a stack trace (the run's event log keeps the trace),
and `tdm status` leaves the inference server alone when the source does not use it."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from tests.support.http_servers import refused_port

BIN = Path(sys.executable).parent
TRACES = ("Traceback", "Stack Trace", "dagster._core.errors", "File \"")


def tdm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "tdm"), *args], capture_output=True, text=True, timeout=timeout)


def assert_no_trace(done: subprocess.CompletedProcess) -> None:
    for trace in TRACES:
        assert trace not in done.stdout + done.stderr, f"{trace!r} in the output:\n{done.stderr[-3000:]}"


def test_a_rejected_batch_prints_its_summary_not_a_trace(home, dagster_home):
    home.config_path.write_text("quality:\n  max_tokens: 5\n")  # every record is too long
    done = tdm("generate", "--force", "--count", "5")
    assert done.returncode == 1, done.stderr[-3000:]
    assert_no_trace(done)
    [report] = home.reports_dir.glob("*.json")
    batch_id = report.stem
    assert f"batch {batch_id}: reject: failed checks: length" in done.stdout
    assert "generated 5, approved 0, rejected 5" in done.stdout
    assert "length.too_long 5" in done.stdout.split("rejected records by reason:")[1].splitlines()[0]
    assert f"report: {report}" in done.stdout and f"rejected records: {home.rejected_dir / batch_id}.jsonl" in done.stdout
    assert "quality_suites - STEP_FAILURE - Execution of step \"quality_suites\" failed: 2 blocking asset checks failed" in done.stderr
    with dg.DagsterInstance.get() as instance:  # the run's log keeps the whole error, trace included
        [run] = instance.get_runs(dg.RunsFilter(job_name="batch_pipeline"))
        [failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        error = failure.dagster_event.step_failure_data.error
        assert error.cls_name == "DagsterAssetCheckFailedError" and error.stack


def test_a_generation_failure_names_its_cause(home, dagster_home):
    with refused_port() as url:
        port = url.rsplit(":", 1)[1]
        home.config_path.write_text(f"auto_generate:\n  source: inference\n  port: {port}\ninference:\n  max_attempts: 1\n")
        done = tdm("generate", "--force", "--count", "4")
        as_json = json.loads(tdm("generate", "--force", "--count", "2", "--json").stdout)
    assert done.returncode == 1, done.stderr[-3000:]
    assert_no_trace(done)
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("batch syllo_infer_") and ": not queued: failed before its checks: " in first_line
    cause = f"inference server failed 4 of 4 requests: POST {url}/v1/chat/completions failed after 1 attempt: ConnectError"
    assert cause in first_line and "Connection refused" in first_line and first_line.count(url) == 1
    assert as_json["success"] is False and "inference server failed 2 of 2 requests" in as_json["error"]


def test_ingest_of_a_rejected_file_prints_its_verdict_not_a_trace(home, dagster_home):
    inbox = home.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    row = {"prompt": "Name the capital of France, please.", "completion": "The capital of France is Paris."}
    (inbox / "same.jsonl").write_text((json.dumps(row) + "\n") * 5)  # five identical records: not diverse
    old = time.time() - 120
    os.utime(inbox / "same.jsonl", (old, old))
    done = tdm("ingest")
    assert done.returncode == 1, done.stderr[-3000:]
    assert_no_trace(done)
    assert "same.jsonl -> inbox_same" in done.stdout and "not queued (reject" in done.stdout


def _contacted(listening: socket.socket) -> bool:
    """Whether anything connected to ``listening`` (and is waiting to be accepted)."""
    listening.setblocking(False)
    try:
        listening.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def test_status_never_contacts_the_inference_server_for_builtin(home):
    with socket.socket() as listening:  # a server that would accept, so any contact shows
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        port = listening.getsockname()[1]
        home.config_path.write_text(f"auto_generate:\n  source: builtin\n  port: {port}\n")
        text = tdm("status", timeout=120)
        data = json.loads(tdm("status", "--json", timeout=120).stdout)
        contacted = _contacted(listening)
        home.config_path.write_text(f"auto_generate:\n  source: inference\n  port: {port}\n")
        asked = tdm("status", timeout=120)  # the source that uses it: asked (and unanswered)
        assert _contacted(listening) and "unavailable" in asked.stdout
    assert text.returncode == 0, text.stderr[-3000:]
    assert not contacted
    assert "unavailable" not in text.stdout
    assert f"inference server http://127.0.0.1:{port}: not used (source: builtin)" in text.stdout
    assert data["inference"] == {"url": f"http://127.0.0.1:{port}", "used": False, "ok": None, "detail": "not used (source: builtin)"}
