"""Routine outcomes read as routine: a rejected batch or a generation that fails for a
named reason prints a summary, not a stack trace (the run's event log keeps the trace),
also under `dagster job execute`; `tdm status` leaves the inference server alone when the
source does not use it; and each routine refusal is one line naming its real cause, with
no Dagster warning around it (issue 19, item 13)."""

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
    assert "Warning" not in done.stderr, done.stderr[:2000]  # Dagster's BetaWarning on sensor owners, once
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


def test_dagster_job_execute_prints_a_rejected_batch_on_one_line(home, dagster_home):
    """Cron's way in: the run still fails (exit 1, status FAILURE), on one line per event
    with the reason, and the UI's log keeps the trace."""
    home.config_path.write_text("quality:\n  max_tokens: 5\nauto_generate:\n  count: 5\n")
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "tdm_dagster.definitions", "-j", "generate_and_queue"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TDM_HOME": str(home.root)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert_no_trace(done)
    assert "BetaWarning" not in done.stderr and " - DEBUG - " not in done.stderr  # the location's console, at INFO
    [report] = home.reports_dir.glob("*.json")
    reason = f"batch {report.stem} was not queued: reject: failed checks: length"
    [step] = [line for line in done.stderr.splitlines() if "run_one_batch - STEP_FAILURE" in line]
    assert step.endswith(f'Execution of step "run_one_batch" failed: {reason}; validity 0.000 < 0.95; overall 0.700 < 0.9')
    [run] = [line for line in done.stderr.splitlines() if "generate_and_queue" in line and "RUN_FAILURE" in line]
    assert f"Steps failed: ['run_one_batch']: {reason}" in run
    with dg.DagsterInstance.get() as instance:
        [outer] = instance.get_runs(dg.RunsFilter(job_name="generate_and_queue"))
        [failure] = instance.all_logs(outer.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert outer.status == dg.DagsterRunStatus.FAILURE
    assert failure.dagster_event.step_failure_data.error.stack  # the UI keeps the whole error


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
    home.config_path.write_text("gate:\n  on_batch_failure:\n    inbox: reject\n")  # inbox files are salvaged by default
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


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed on stderr (nothing else there, no trace)."""
    assert_no_trace(done)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_validate_a_missing_file_says_so_in_one_line(home, tmp_path):
    missing = tmp_path / "nonexistent.jsonl"
    done = tdm("validate", str(missing))
    assert (done.returncode, done.stdout, one_error_line(done)) == (2, "", f"Error: file not found: {missing}")
    as_json = tdm("validate", str(missing), "--json")
    assert as_json.returncode == 2 and one_error_line(as_json) == f"Error: file not found: {missing}"
    assert json.loads(as_json.stdout) == {"file": str(missing), "readable": False, "error": f"file not found: {missing}"}
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    done = tdm("validate", str(empty))
    assert (done.returncode, done.stdout, one_error_line(done)) == (2, "", f"Error: {empty}: file is empty (0 bytes): 0 records")


def test_validate_with_a_spec_names_it_and_why_no_record_matched(home, tmp_path):
    chats = tmp_path / "chats.jsonl"
    chat = {"messages": [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "Two plus two is four."}]}
    chats.write_text(json.dumps(chat) + "\n")
    done = tdm("validate", str(chats), "--spec", "syllo_v1")
    assert done.returncode == 1, done.stderr[-3000:]
    header, verdict, line = done.stdout.splitlines()[:3]
    assert header.endswith("(level standard, spec syllo_v1)")
    assert verdict.startswith("verdict: reject: no record matches spec syllo_v1 (first problem: record has the shape of chat_sft_v1, not syllo_v1)")
    assert line == "  line 1: ERROR schema.spec_mismatch: record has the shape of chat_sft_v1, not syllo_v1"
    assert "spec none" not in done.stdout and "no record could be read" not in done.stdout
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n")
    verdict = tdm("validate", str(broken)).stdout.splitlines()[1]
    assert verdict.startswith(f"verdict: reject: no record matches spec none (first problem: {broken} line 1, record #0: invalid JSON")


def test_a_metric_below_its_floor_never_reads_as_equal(home, tmp_path):
    """189 good records of 199: 0.9497, which three decimals would round up to the floor."""
    path = tmp_path / "nearly.jsonl"
    good = [{"instruction": f"Write the number {n} in words.", "input": "", "output": f"The number {n} is written as {n}-word form."} for n in range(189)]
    path.write_text("".join(json.dumps(row) + "\n" for row in good) + "not json\n" * 10)
    done = tdm("validate", str(path), "--level", "quick")
    assert done.returncode == 1, done.stderr[-3000:]
    verdict = done.stdout.splitlines()[1]
    assert "validity 0.9497 < 0.95" in verdict and "0.950 <" not in verdict


def test_an_unknown_dataset_is_named_with_both_quotes(home):
    done = tdm("datasets", "show", "nosuch")
    assert (done.returncode, one_error_line(done)) == (1, "Error: no dataset named 'nosuch'")
