from dataclasses import replace
from typing import Any, Callable, Optional

import dagster as dg

from tdm_dagster.config.training import TrainingConfig


class TrainerResource(dg.ConfigurableResource):
    """The training box (the "4090"): trains on this machine's GPU when it has one, else
    on the CPU. Hyper-parameters come from the ``training:`` section of config.yaml, read
    at run time; ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``), when set, pins the
    device over ``training.device``."""

    device: Optional[str] = None

    def train_from_queue(
        self,
        home,
        settings: TrainingConfig,
        output_dir,
        progress: Optional[Callable[[int, int, float], None]] = None,
        profile: Any = None,
    ) -> Any:
        """``profile``: the data profile (``config.sections.ProfileConfig``) to apply first, if any."""
        from tdm_dagster.training.trainer import train_from_queue

        config = replace(settings, device=self.device) if self.device else settings
        return train_from_queue(home, config, output_dir, progress=progress, profile=profile)
