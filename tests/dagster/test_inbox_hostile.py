"""The inbox under hostile entries, slow writers, racing processes and SIGKILL.

Real files, real ``tdm ingest`` subprocesses, real sensor evaluations and runs. Each
test checks that every record written ends up exactly once in the queue or in
``rejected/``, and that anything that is not a readable regular file ends in ``failed/``
with its reason, once, without blocking the rest.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from tdm_dagster.cli import main
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.inbox import scan_inbox
from tdm_dagster.ingest.inbox_claims import claim, unprocessed_claims
from tdm_dagster.ingest.inbox_failures import Failed
from tdm_dagster.ingest.inbox_pass import MAX_ATTEMPTS
from tdm_dagster.jobs import INBOX_FILE_READABLE
from tdm_dagster.resources import TdmHomeResource
from tdm_dagster.sensors import inbox_sensor

BIN = Path(sys.executable).parent
SENSOR_RUN = """
import dagster as dg
from tdm_dagster.definitions import defs
from tdm_dagster.resources import TdmHomeResource
from tdm_dagster.sensors import inbox_sensor
instance = dg.DagsterInstance.ephemeral()
request = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"tdm": TdmHomeResource()}))
if isinstance(request, dg.RunRequest):
    defs.resolve_job_def("ingest_inbox").execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
"""


def record(tag: str, n: int) -> bytes:
    instruction = f"Write the number {tag}-{n} in words."
    return json.dumps({"instruction": instruction, "input": "", "output": f"The number {n} of {tag} is spelled out in full words here."}).encode() + b"\n"


def records(tag: str, count: int) -> bytes:
    return b"".join(record(tag, n) for n in range(count))


def expected(tag: str, count: int) -> set[str]:
    return {f"Write the number {tag}-{n} in words." for n in range(count)}


def accounted(home: TdmHome) -> Counter:
    """How often each instruction appears in the queue and in ``rejected/`` together."""
    seen: Counter = Counter()
    for path in home.queue_root.glob("*/*.jsonl"):
        for line in path.read_text().splitlines():
            seen[json.loads(line)["messages"][0]["content"]] += 1
    for path in home.rejected_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            raw = json.loads(line)["source"].get("raw")
            try:
                seen[json.loads(raw)["instruction"]] += 1
            except (TypeError, ValueError, KeyError):
                seen[f"unreadable: {raw!r}"] += 1
    return seen


def reports(home: TdmHome) -> list[dict]:
    return [json.loads(path.read_text()) for path in home.reports_dir.glob("inbox_*.json")]


def tdm_env(home: TdmHome, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    return {**env, "TDM_HOME": str(home.root), **extra}


def start_ingest(home: TdmHome, **env: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "tdm"), "ingest", "--json"], env=tdm_env(home, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 240) -> list[dict]:
    out, _ = process.communicate(timeout=timeout)
    return json.loads(out) if out.strip() else []


# ---------------------------------------------------------------------------- odd entries


def test_links_fifos_sockets_folders_go_to_failed_once_and_block_nothing(home, tmp_path, monkeypatch, dagster_home):
    inbox = home.inbox_dir
    inbox.mkdir()
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(records("outside", 30))
    (inbox / "good.jsonl").write_bytes(records("good", 30))
    (inbox / "passwd.jsonl").symlink_to("/etc/passwd")
    (inbox / "outside.jsonl").symlink_to(outside)
    (inbox / "inside.jsonl").symlink_to(inbox / "good.jsonl")  # even a link inside the inbox is refused
    (inbox / "loop.jsonl").symlink_to("loop.jsonl")
    (inbox / "dangling.jsonl").symlink_to(tmp_path / "missing.jsonl")
    os.mkfifo(inbox / "fifo.jsonl")  # opening it for reading would block forever
    monkeypatch.chdir(inbox)  # a socket path must be short
    listener = socket.socket(socket.AF_UNIX)
    listener.bind("socket.jsonl")
    (inbox / "folder.jsonl").mkdir()
    (inbox / "folder.jsonl" / "inner.jsonl").write_bytes(records("inner", 5))
    (inbox / "empty.jsonl").write_bytes(b"")
    (inbox / "notes.txt").write_bytes(b"not a format tdm reads\n")
    odd = {"passwd.jsonl": "inbox.symlink", "outside.jsonl": "inbox.symlink", "inside.jsonl": "inbox.symlink",
           "loop.jsonl": "inbox.symlink", "dangling.jsonl": "inbox.symlink", "fifo.jsonl": "inbox.fifo",
           "socket.jsonl": "inbox.socket", "folder.jsonl": "inbox.folder", "empty.jsonl": "inbox.unreadable_file",
           "notes.txt": "inbox.unreadable_file"}  # fmt: skip

    process = start_ingest(home, TDM_INBOX_SETTLE_SEC="0", DAGSTER_HOME=str(dagster_home))
    outcomes = finish(process, timeout=240)  # a FIFO opened for reading would hang here
    listener.close()
    assert process.returncode == 1  # files were not queued: not a clean run
    by_file = {o["file"]: o for o in outcomes}
    assert by_file["good.jsonl"]["queued"] is True
    assert {name: by_file[name]["state"] for name in odd} == dict.fromkeys(odd, "failed")
    reasons = {json.loads(p.read_text())["what"]: json.loads(p.read_text()) for p in home.failed_dir.glob("*/reason.json")}
    assert {name: reason["code"] for name, reason in reasons.items()} == odd
    for name, reason in reasons.items():
        moved = Path(reason["moved_to"])
        assert moved.parent.parent == home.failed_dir and (moved.is_symlink() or moved.exists()), name
        assert reason["when"] and reason["where"] and reason["reason"]
    assert Path(reasons["passwd.jsonl"]["moved_to"]).is_symlink()  # the link itself, never its target
    assert "'/etc/passwd'" in reasons["passwd.jsonl"]["reason"]
    assert outside.read_bytes() == records("outside", 30)
    assert (Path(reasons["folder.jsonl"]["moved_to"]) / "inner.jsonl").exists()
    seen = accounted(home)  # no record of /etc/passwd, the outside file or the folder was read
    assert {key: count for key, count in seen.items() if not key.startswith("unreadable")} == dict.fromkeys(expected("good", 30), 1)
    assert not any("root:" in key for key in seen)
    assert list(inbox.iterdir()) == [] and unprocessed_claims(home) == []
    # Reported once: the next run finds nothing to say.
    again = start_ingest(home, TDM_INBOX_SETTLE_SEC="0", DAGSTER_HOME=str(dagster_home))
    assert finish(again) == [] and again.returncode == 0
    # Each went to the alert sensor's feed as a failed check, once.
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    history = instance.event_log_storage.get_asset_check_execution_history(INBOX_FILE_READABLE, limit=50)
    assert sorted(r.event.dagster_event.event_specific_data.metadata["observed_file"].value for r in history) == sorted(odd)


def test_an_entry_swapped_for_a_link_at_claim_time_is_refused(home, tmp_path):
    inbox = home.inbox_dir
    inbox.mkdir()
    secret = tmp_path / "secret.jsonl"
    secret.write_bytes(records("secret", 3))
    (inbox / "swap.jsonl").write_bytes(records("swap", 3))
    [ready] = scan_inbox(home, settle_sec=0).ready
    (inbox / "swap.jsonl").unlink()
    (inbox / "swap.jsonl").symlink_to(secret)  # after the scan, before the claim
    refused = claim(home, ready.path, "normal", ready.signature)
    assert isinstance(refused, Failed) and refused.code == "inbox.symlink"
    assert (refused.folder / "swap.jsonl").is_symlink() and secret.read_bytes() == records("secret", 3)
    assert list(home.archive_dir.iterdir()) == [] and list(home.batches_dir.iterdir()) == []


def test_a_file_that_grows_at_claim_time_is_put_back(home):
    home.inbox_dir.mkdir()
    growing = home.inbox_dir / "growing.jsonl"
    growing.write_bytes(records("grow", 3))
    [ready] = scan_inbox(home, settle_sec=0).ready
    with open(growing, "ab") as writer:  # the writer wakes up after the scan
        writer.write(records("more", 2))
    assert claim(home, ready.path, "normal", ready.signature) is None
    assert growing.read_bytes() == records("grow", 3) + records("more", 2)
    assert list(home.archive_dir.iterdir()) == [] and list(home.batches_dir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file, so it is not unreadable (this suite runs as root here)")
def test_unreadable_file_goes_to_failed(home):
    home.inbox_dir.mkdir()
    (home.inbox_dir / "good.jsonl").write_bytes(records("good", 30))
    (home.inbox_dir / "locked.jsonl").write_bytes(records("locked", 30))
    os.chmod(home.inbox_dir / "locked.jsonl", 0o000)
    home.config_path.write_text("inbox:\n  settle_sec: 0\n")
    outcomes = {o["file"]: o for o in json.loads(CliRunner().invoke(main, ["ingest", "--json"]).stdout)}
    assert outcomes["locked.jsonl"]["state"] == "failed" and outcomes["good.jsonl"]["queued"] is True
    [reason] = [json.loads(p.read_text()) for p in home.failed_dir.glob("*/reason.json")]
    assert reason["code"] == "inbox.unreadable" and "Permission denied" in reason["reason"]


# ---------------------------------------------------------------------------- settling

SLOW_WRITER = """
import sys, time
path, data = sys.argv[1], open(sys.argv[2], "rb").read()
cuts = [len(data) * k // 4 + 7 for k in (1, 2, 3)]  # each pause falls in the middle of a record
with open(path, "ab") as out:
    start = 0
    for cut in cuts + [len(data)]:
        out.write(data[start:cut]); out.flush(); start = cut
        if cut != len(data):
            time.sleep(2.6)  # longer than the old 2 s settle time, shorter than inbox.settle_sec
"""


@pytest.mark.parametrize("runner", ["tdm ingest", "sensor"])
def test_a_slow_writer_loses_nothing(home, tmp_path, runner):
    """400 records written over ~8 s with 2.6 s pauses mid-record while tdm ingest (or
    the sensor, every second) runs: all 400 accounted, none vanish."""
    data = tmp_path / "data.jsonl"
    data.write_bytes(records("slow", 400))
    home.inbox_dir.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(home.inbox_dir / "slow.jsonl"), str(data)])
    outputs = []
    if runner == "tdm ingest":
        time.sleep(1)
        while writer.poll() is None or unprocessed_claims(home) or any(home.inbox_dir.iterdir()):
            outputs += finish(start_ingest(home))  # default inbox.settle_sec (5 s)
    else:
        with dg.instance_for_test() as instance:
            from tdm_dagster.definitions import defs

            while writer.poll() is None or any(home.inbox_dir.iterdir()):
                request = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"tdm": TdmHomeResource()}))
                if isinstance(request, dg.RunRequest):
                    assert writer.poll() is not None, "the sensor asked to ingest a file still being written"
                    result = defs.resolve_job_def("ingest_inbox").execute_in_process(run_config=request.run_config, instance=instance)
                    outputs += result.output_for_node("ingest_inbox_files")
                time.sleep(1)
    assert writer.wait() == 0
    totals = [r["records"] for r in reports(home)]
    assert sum(t["approved"] + t["rejected"] for t in totals) == 400
    assert accounted(home) == Counter(dict.fromkeys(expected("slow", 400), 1))
    assert [o["file"] for o in outputs if o.get("batch_id")] == ["slow.jsonl"]


def test_ingest_names_the_files_it_leaves_because_they_are_being_written(home):
    home.config_path.write_text("inbox:\n  settle_sec: 1\n")
    home.inbox_dir.mkdir()
    busy = home.inbox_dir / "busy.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", f"""
import time
with open({str(busy)!r}, "ab") as out:
    for n in range(60):
        out.write({record("busy", 0)!r}.replace(b"-0 ", b"-%d " % n)); out.flush(); time.sleep(0.1)
"""])  # fmt: skip
    time.sleep(0.3)
    result = CliRunner().invoke(main, ["ingest"])
    still_writing = writer.poll() is None
    writer.wait()
    assert still_writing, "the writer finished before ingest looked: the test proves nothing"
    assert result.exit_code == 0, result.output
    assert "busy.jsonl: still being written; left in the inbox" in result.output
    assert busy.exists() and list(home.archive_dir.glob("*")) == []


# ---------------------------------------------------------------------------- exactly once


@pytest.mark.parametrize("trial", range(10))
def test_two_ingests_and_a_sensor_run_process_each_file_once(tmp_path, trial, monkeypatch):
    """Two ``tdm ingest`` and a sensor-started ingest run at once, over three files."""
    home = TdmHome(tmp_path / f"home{trial}").ensure()
    monkeypatch.setenv("TDM_HOME", str(home.root))
    names = [f"f{n}.jsonl" for n in range(3)]
    home.inbox_dir.mkdir()
    for name in names:
        (home.inbox_dir / name).write_bytes(records(name[:2], 30) + b"{broken %s\n" % name.encode())
    env = {"TDM_INBOX_SETTLE_SEC": "1"}  # all three wait for the same moment to claim
    processes = [start_ingest(home, **env), start_ingest(home, **env),
                 subprocess.Popen([sys.executable, "-c", SENSOR_RUN], env=tdm_env(home, **env),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    for process in processes:
        process.communicate(timeout=300)
    archived = Counter(path.name for path in home.archive_dir.glob("*/*"))
    assert archived == Counter(names)  # each file claimed exactly once
    want = set().union(*(expected(name[:2], 30) for name in names))
    seen = accounted(home)
    assert {key: count for key, count in seen.items() if not key.startswith("unreadable")} == dict.fromkeys(want, 1)
    assert sum(1 for key in seen if key.startswith("unreadable")) == 3 and set(seen.values()) == {1}
    queued = sum(len(path.read_text().splitlines()) for path in home.queue_root.glob("*/*.jsonl"))
    assert queued == sum(r["records"]["approved"] for r in reports(home)) == 90
    assert len(reports(home)) == 3 and unprocessed_claims(home) == []
    runs = {path.parent.name: json.loads(path.read_text())["attempts"] for path in home.batches_dir.glob("inbox_*/attempts.json")}
    assert sorted(runs.values()) == [1, 1, 1]  # each batch ran once, not once per process


def test_sigkilled_ingest_is_finished_by_the_next_once(home):
    home.inbox_dir.mkdir()
    (home.inbox_dir / "big.jsonl").write_bytes(records("big", 200))
    process = start_ingest(home, TDM_INBOX_SETTLE_SEC="0")
    deadline = time.monotonic() + 240
    while not list(home.batches_dir.glob("inbox_big_*/generated.jsonl")):  # the run is reading the claimed file
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    [batch_id] = unprocessed_claims(home)  # claimed, gate not finished
    outcomes = finish(start_ingest(home, TDM_INBOX_SETTLE_SEC="0"))
    assert [(o["batch_id"], o["queued"]) for o in outcomes] == [(batch_id, True)]
    assert json.loads((home.batch_dir(batch_id) / "attempts.json").read_text())["attempts"] == 2
    assert accounted(home) == Counter(dict.fromkeys(expected("big", 200), 1))
    assert finish(start_ingest(home, TDM_INBOX_SETTLE_SEC="0")) == []


def test_a_claim_killed_before_its_file_moved_is_dropped_and_the_file_still_ingested(home):
    from tdm_dagster.ingest.inbox import new_folder
    from tdm_dagster.ingest.inbox_claims import _write_plan

    home.inbox_dir.mkdir()
    (home.inbox_dir / "late.jsonl").write_bytes(records("late", 30))
    batch_id, folder = new_folder(home.archive_dir, "late.jsonl")  # what a claimer killed between
    _write_plan(home, batch_id, folder / "late.jsonl", "normal")  # its plan and its rename leaves
    home.config_path.write_text("inbox:\n  settle_sec: 0\n")
    result = CliRunner().invoke(main, ["ingest", "--json"])
    [outcome] = json.loads(result.stdout)
    assert outcome["file"] == "late.jsonl" and outcome["queued"] and outcome["batch_id"] != batch_id
    assert not home.batch_dir(batch_id).exists() and not folder.exists()
    assert accounted(home) == Counter(dict.fromkeys(expected("late", 30), 1))


def test_a_batch_that_keeps_failing_ends_in_failed_after_bounded_attempts(home):
    home.inbox_dir.mkdir()
    (home.inbox_dir / "doomed.jsonl").write_bytes(records("doomed", 30))
    [ready] = scan_inbox(home, settle_sec=0).ready
    claimed = claim(home, ready.path, "normal", ready.signature)
    (home.batch_dir(claimed.batch_id) / "generated.jsonl").mkdir()  # a real fault: the batch cannot be written
    claimed.release()  # as if its process had died
    home.config_path.write_text("inbox:\n  settle_sec: 0\n")
    result = CliRunner().invoke(main, ["ingest", "--json"])
    [outcome] = json.loads(result.stdout)
    assert result.exit_code == 1 and outcome["state"] == "failed" and f"failed {MAX_ATTEMPTS} times" in outcome["verdict"]
    reason = json.loads((home.failed_dir / claimed.batch_id / "reason.json").read_text())
    assert reason["code"] == "inbox.run_failed" and reason["batch_id"] == claimed.batch_id
    assert Path(reason["moved_to"]).read_bytes() == records("doomed", 30)  # the records are kept
    assert unprocessed_claims(home) == []
    again = CliRunner().invoke(main, ["ingest", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout) == []  # not retried forever


def test_a_refused_entry_reaches_the_check_failure_alert_sensor(home, monkeypatch):
    from tdm_dagster.definitions import defs
    from tdm_dagster.sensors import check_failure_alert_sensor
    from tests.support.http_servers import running_server
    from tests.support.slack_server import slack_app

    received: list = []
    home.inbox_dir.mkdir()
    (home.inbox_dir / "loop.jsonl").symlink_to("loop.jsonl")
    home.config_path.write_text("inbox:\n  settle_sec: 0\n")
    with running_server(slack_app(received)) as url, dg.instance_for_test() as instance:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("TDM_SLACK_CHANNEL", "#training-data")
        monkeypatch.setenv("TDM_SLACK_API_URL", f"{url}/api/")
        context = dg.build_sensor_context(instance=instance)
        check_failure_alert_sensor(context)  # alerts start now
        assert defs.resolve_job_def("ingest_inbox").execute_in_process(instance=instance).success
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        check_failure_alert_sensor(context)
    [message] = received
    assert message["body"]["blocks"][0]["text"]["text"] == "Check failed: generated_batch · inbox_file_readable"
    assert "loop.jsonl" in json.dumps(message["body"]["blocks"]) and "symbolic link" in json.dumps(message["body"]["blocks"])
