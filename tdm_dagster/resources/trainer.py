from typing import Any, Callable, Optional

import dagster as dg


class TrainerResource(dg.ConfigurableResource):
    """The training box (the "4090"): trains on this machine's GPU when it has one, else
    on the CPU. Hyper-parameters come from the ``training:`` section of config.yaml, read
    at run time; ``device`` pins the device (``auto``, ``cpu``, ``cuda``, ``cuda:1``)."""

    device: str = "auto"

    def train_from_queue(self, home, settings, output_dir, progress: Optional[Callable[[int, int, float], None]] = None) -> Any:
        from dataclasses import asdict, fields

        from tdm_dagster.training.trainer import TrainConfig, train_from_queue

        trainer_keys = {f.name for f in fields(TrainConfig)}
        shared = {key: value for key, value in asdict(settings).items() if key in trainer_keys}
        return train_from_queue(home, TrainConfig(**shared, device=self.device), output_dir, progress=progress)
