"""The GPU stats of a ``/health`` body, defined once: ``tdm serve`` writes them with
:func:`health_gpus` and the inference client reads any server's with :func:`parse_gpu_stats`.

What ``tdm serve`` writes::

    {"gpus": [{"name": "NVIDIA H200", "memory_used_mb": 1234.5,
               "memory_total_mb": 143771.0, "utilization_pct": 12.0}, ...]}

``utilization_pct`` is ``null`` where the driver's counters are unreadable (no
``pynvml``). A machine without GPUs reports ``"gpus": []`` (stats reported, no GPU);
a server that reports no GPU stats has no ``gpus`` key, which reads as ``None``.
The reader also accepts other servers' spellings, listed in :func:`parse_gpu_stats`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

BYTES_THRESHOLD = 2**20
"""A memory figure at or above this many "MB" (1 TiB) must really be in bytes."""


@dataclass(frozen=True)
class GpuStats:
    name: str | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    utilization_pct: float | None = None


def health_gpus(stats: list[GpuStats]) -> dict[str, list[dict[str, Any]]]:
    """The ``gpus`` part of a ``/health`` body, in the shape :func:`parse_gpu_stats` reads."""
    return {"gpus": [asdict(gpu) for gpu in stats]}


def local_gpu_stats() -> list[GpuStats]:
    """This process's view of the CUDA devices (empty without CUDA, or when torch is not
    loaded: a server that has not loaded a model has not touched a GPU)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    stats = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        try:
            utilization: float | None = float(torch.cuda.utilization(index))
        except Exception:  # noqa: BLE001 - pynvml missing or the driver refuses: unknown
            utilization = None
        stats.append(GpuStats(
            name=torch.cuda.get_device_name(index),
            memory_used_mb=round((total - free) / 2**20, 1),
            memory_total_mb=round(total / 2**20, 1),
            utilization_pct=utilization,
        ))  # fmt: skip
    return stats


def parse_gpu_stats(body: Any) -> list[GpuStats] | None:
    """GPU stats from a health body, or ``None`` when it reports none.

    Accepted shapes: ``{"gpus": [{...}, ...]}`` (what :func:`health_gpus` writes) or
    ``{"gpu": {...}}`` (one GPU). Each GPU object may have:

    - name: ``name`` or ``gpu_name``
    - memory in MB: ``memory_used_mb`` / ``memory_total_mb``
    - memory in bytes: ``memory_used_bytes`` / ``memory_total_bytes``
    - memory, unit unstated: ``memory_used`` / ``memory_total`` (read as MB, unless at or
      above 2**20, which no GPU has in MB, so read as bytes)
    - utilisation in percent: ``utilization_pct``, ``utilization`` or ``gpu_util``

    Numbers may be JSON numbers or numeric strings; anything else reads as unknown.
    """
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("gpus"), list):
        entries = body["gpus"]
    elif isinstance(body.get("gpu"), dict):
        entries = [body["gpu"]]
    else:
        return None
    return [_parse_one_gpu(entry) for entry in entries if isinstance(entry, dict)]


def _parse_one_gpu(entry: dict[str, Any]) -> GpuStats:
    name = _first(entry, "name", "gpu_name")
    return GpuStats(
        name=str(name) if name is not None else None,
        memory_used_mb=_memory_mb(entry, "used"),
        memory_total_mb=_memory_mb(entry, "total"),
        utilization_pct=_number(_first(entry, "utilization_pct", "utilization", "gpu_util")),
    )


def _memory_mb(entry: dict[str, Any], which: str) -> float | None:
    mb = _number(entry.get(f"memory_{which}_mb"))
    if mb is not None:
        return mb
    in_bytes = _number(entry.get(f"memory_{which}_bytes"))
    if in_bytes is not None:
        return in_bytes / 2**20
    unstated = _number(entry.get(f"memory_{which}"))
    if unstated is not None and unstated >= BYTES_THRESHOLD:
        return unstated / 2**20
    return unstated


def _first(entry: dict[str, Any], *keys: str) -> Any:
    return next((entry[key] for key in keys if entry.get(key) is not None), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
