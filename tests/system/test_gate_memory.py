"""``tdm validate`` holds one chunk of a file at a time: the peak memory of validating a
200,000-record file stays near that of a 20,000-record one (the size of one chunk),
where judging the file whole grows with it. Each run is a child process of its own,
its peak its own VmHWM.

Level quick keeps the test to seconds: the file is read, mapped, schema-checked and
its suite features computed chunk by chunk, as at every level (what the deeper levels
keep per record across chunks is bounded by ``bench/bench_gate_memory.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixture_data import GSM8K, ROLEPLAY

CHUNK = 20_000
GROWTH_BOUND_MB = 150
"""What 180,000 records more may add to the peak: a few numbers each and the report's
counts; the records themselves must not stay (judged whole, the peak grows by about
50 MB per 20,000 of these records: measured 301 MB at 2,000 and 354 MB at 20,000 records
whole, 310 MB at 20,000 in chunks of 2,000)."""

CHILD = """
import json, sys
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.gate.validate_file import validate_file
report = validate_file(sys.argv[1], TdmConfig(), level="quick", chunk_records=int(sys.argv[2]))
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"records": report["totals"]["records"], "accepted": report["totals"]["accepted"], "peak_kb": peak}))
"""


def write_chats(path: Path, n: int) -> Path:
    base = json.loads(GSM8K.read_text(encoding="utf-8")) + json.loads(ROLEPLAY.read_text(encoding="utf-8"))
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            record = base[i % len(base)]
            user = {"role": "user", "content": f"{record['instruction']} (variant {i})"}
            out.write(json.dumps({"messages": [user, {"role": "assistant", "content": record["output"]}]}) + "\n")
    return path


def peaks(*runs: tuple[Path, int]) -> list[dict]:
    """Each (file, chunk size) validated by a child process of its own, side by side."""
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(chunk)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for path, chunk in runs]  # fmt: skip
    measured = []
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, err[-2000:]
        measured.append(json.loads(out.strip().splitlines()[-1]))
    return measured


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("memory")
    return write_chats(folder / "small.jsonl", CHUNK), write_chats(folder / "large.jsonl", 10 * CHUNK)


def test_validating_ten_times_the_records_keeps_the_peak_of_one_chunk(files):
    small, large = files
    one_chunk, ten_chunks = peaks((small, CHUNK), (large, CHUNK))
    assert (one_chunk["records"], ten_chunks["records"]) == (CHUNK, 10 * CHUNK)
    assert ten_chunks["accepted"] > 9 * CHUNK  # judged, not refused
    growth_mb = (ten_chunks["peak_kb"] - one_chunk["peak_kb"]) / 1024
    assert growth_mb < GROWTH_BOUND_MB, f"peak {one_chunk['peak_kb'] // 1024} MB at {CHUNK} records, {ten_chunks['peak_kb'] // 1024} MB at {10 * CHUNK}"
