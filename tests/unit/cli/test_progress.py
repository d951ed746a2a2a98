"""Progress people can see: ``tdm validate`` draws a bar on stderr when stderr is a real
pseudo-terminal, and nothing when it is a pipe or under ``--json``; a Dagster step logs
its progress at a steady pace, not per record."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import dagster as dg
import pytest

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.generate.generators import get_generator
from tdm_dagster.progress import SteadyLog

CLI = [sys.executable, "-c", "from tdm_dagster.cli import main; main()"]
RECORDS = 3000


@pytest.fixture(scope="module")
def records_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "chats.jsonl"
    atomic_write_jsonl(path, get_generator("syllo").generate(1, RECORDS, 11))
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TDM_")}
    return {**env, "TDM_HOME": str(tmp_path / "home")}


def _validate_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``tdm validate`` with stderr on a new pseudo-terminal: exit code, stdout, what the terminal got."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal's size, as a window gives it
    process = subprocess.Popen([*CLI, "validate", *args], stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, env=env)
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    stdout = process.stdout.read().decode()
    return process.wait(timeout=60), stdout, shown.decode(errors="replace")


def test_validate_shows_progress_on_a_terminal_only(records_file, tmp_path):
    env = _env(tmp_path)
    code, stdout, shown = _validate_on_a_terminal([str(records_file), "--level", "quick"], env)
    assert code == 0, shown[-2000:]
    assert f"validating {records_file.name}" in shown and "records" in shown and "\r" in shown
    assert f"{RECORDS} records" in stdout  # the summary itself is untouched, on stdout

    code, stdout, shown = _validate_on_a_terminal([str(records_file), "--level", "quick", "--json"], env)
    assert code == 0 and "validating" not in shown
    assert json.loads(stdout)["totals"]["records"] == RECORDS

    piped = subprocess.run([*CLI, "validate", str(records_file), "--level", "quick"], capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0 and "validating" not in piped.stderr


def test_steady_log_paces_its_lines_by_the_clock():
    lines: list[str] = []
    now = [0.0]
    advance = SteadyLog(lines.append, "read", 10_000, every_s=5, clock=lambda: now[0])
    for _ in range(10_000):
        advance(1)
        now[0] += 0.002  # 20 s in all
    advance.finish()
    assert len(lines) == 3 + 1  # at 5, 10 and 15 s, and the last (at 20 s)
    assert lines[-1].startswith("read: 10,000/10,000 (100%)")


def test_a_dagster_step_logs_a_bounded_number_of_progress_lines(home):
    from tdm_dagster.assets.generate import generated_batch
    from tdm_dagster.partitions import batch_partitions
    from tdm_dagster.resources import InferenceServerResource, SkillApiResource, TdmHomeResource

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(batch_partitions.name, ["progress-batch"])
        started = time.monotonic()
        result = dg.materialize(
            [generated_batch], partition_key="progress-batch", instance=instance,
            resources={"tdm": TdmHomeResource(), "inference": InferenceServerResource(base_url="http://127.0.0.1:9"), "skill_api": SkillApiResource()},
            run_config={"ops": {"generated_batch": {"config": {"count": 2000, "seed": 5}}}},
        )  # fmt: skip
        seconds = time.monotonic() - started
        messages = [event.user_message for event in instance.all_logs(result.run_id)]
    assert result.success
    progress = [message for message in messages if message.startswith("generated: ")]
    assert 1 <= len(progress) <= 1 + seconds / 5
    assert progress[-1].startswith("generated: 2,000/2,000 (100%)")
