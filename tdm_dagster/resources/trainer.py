from typing import Any, Callable, Optional

import dagster as dg


class TrainerResource(dg.ConfigurableResource):
    """The training box (the "4090"): trains on this machine's GPU when it has one, else
    on the CPU. Hyper-parameters come from the ``training:`` section of config.yaml, read
    at run time; ``device`` pins the device (``auto``, ``cpu``, ``cuda``, ``cuda:1``)."""

    device: str = "auto"

    def train_from_queue(self, home, settings, output_dir, progress: Optional[Callable[[int, int, float], None]] = None) -> Any:
        from tdm_dagster.training.trainer import TrainConfig, train_from_queue

        config = TrainConfig(
            model_path=settings.model_path, tokenizer_path=settings.tokenizer_path, learning_rate=settings.learning_rate,
            batch_size=settings.batch_size, max_length=settings.max_length, max_steps=settings.max_steps,
            min_examples=settings.min_examples, lora=settings.lora, device=self.device,
        )  # fmt: skip
        return train_from_queue(home, config, output_dir, progress=progress)
