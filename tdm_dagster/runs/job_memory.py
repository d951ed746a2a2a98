"""Whether the box has the memory a job needs, before it is launched (``POST /v1/scheduler/run``).

A job is refused, with the figures, when its estimate exceeds what the box has left:
``MemAvailable`` (``/proc/meminfo``) less the reserve ``api.job_memory_reserve_mb`` kept
for everything else on the box. The estimate is deliberately coarse and errs high:

- every job: ``RUN_PROCESS_BYTES``, a run's own process (Dagster, the code location and
  tdm loaded): ``dagster job execute -j refresh_stats`` peaked at 131 MiB RSS (measured
  with ``/usr/bin/time -v``, Dagster 1.13, Python 3.11), rounded up to 256 MiB;
- jobs that gate records (``generate_and_queue``, ``batch_pipeline``, ``recheck_quality``,
  ``ingest_inbox``): the bytes waiting for them (queue or inbox files) times
  ``GATE_BYTES_PER_INPUT_BYTE`` (the gate holds each record parsed, its features and its
  duplicate signatures: a few times its JSON size);
- training jobs: the model's weight files times ``TRAINING_BYTES_PER_WEIGHT_BYTE`` (fp32
  weights, gradients and AdamW's two moments: four copies), plus the training data read
  into memory.

No Dagster import here: plain numbers over files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
RUN_PROCESS_BYTES = 256 * MIB
GATE_BYTES_PER_INPUT_BYTE = 4
TRAINING_BYTES_PER_WEIGHT_BYTE = 4
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
GATE_JOBS = frozenset({"generate_and_queue", "batch_pipeline", "recheck_quality", "ingest_inbox"})
TRAINING_JOBS = frozenset({"training_pipeline", "train_evaluate_deploy"})


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` in bytes, or None where the kernel does not say (not Linux)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _bytes_under(folders: list[Path], suffixes: tuple[str, ...] | None = None) -> int:
    total = 0
    for folder in folders:
        if folder.is_file():
            total += folder.stat().st_size
            continue
        for path in folder.rglob("*") if folder.is_dir() else ():
            if path.is_file() and (suffixes is None or path.suffix in suffixes):
                total += path.stat().st_size
    return total


def estimate_bytes(job: str, *, gate_inputs: list[Path], training_data: list[Path], model_folder: Path | None) -> int:
    """What ``job`` is expected to hold at its peak (see the module docstring)."""
    estimate = RUN_PROCESS_BYTES
    if job in GATE_JOBS:
        estimate += GATE_BYTES_PER_INPUT_BYTE * _bytes_under(gate_inputs)
    if job in TRAINING_JOBS:
        weights = _bytes_under([model_folder], WEIGHT_SUFFIXES) if model_folder else 0
        estimate += TRAINING_BYTES_PER_WEIGHT_BYTE * weights + _bytes_under(training_data)
    return estimate


@dataclass(frozen=True)
class MemoryVerdict:
    needed: int
    available: int | None
    reserve: int

    @property
    def fits(self) -> bool:
        return self.available is None or self.needed <= self.available - self.reserve

    def reason(self, job: str) -> str:
        left = max(0, (self.available or 0) - self.reserve)
        return (
            f"{job} needs about {self.needed // MIB} MiB; the box has {(self.available or 0) // MIB} MiB available, "
            f"{left // MIB} MiB beyond the {self.reserve // MIB} MiB reserve (api.job_memory_reserve_mb): "
            "not launched, try again when memory is free"
        )


def check(needed: int, reserve_mb: int, available: int | None = None) -> MemoryVerdict:
    """The verdict for a job estimated at ``needed`` bytes (``available``: measured now unless given)."""
    return MemoryVerdict(needed, available if available is not None else available_bytes(), reserve_mb * MIB)
