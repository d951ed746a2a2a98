"""The trainer: claim queue files, train a (tiny or local) causal LM, write checkpoints.

Plain Python, no Dagster. Importing this package is light: torch and transformers are
imported only inside the functions that need them.

- ``tdm_dagster.training.data``: chat examples -> token ids, assistant-only labels,
  length-grouped batches padded only to each batch's own longest example.
- ``tdm_dagster.training.trainer``: ``train(examples, TrainingConfig)`` -> ``TrainResult``
  (``TrainingConfig`` is config.yaml's ``training:`` section, ``tdm_dagster.config.training``).
- ``tdm_dagster.training.checkpoints``: atomic ``checkpoints/checkpoint-N`` folders.
- ``tdm_dagster.queue.claims``: atomic claims on queue files, release, archive.
"""

from __future__ import annotations

__all__ = ["NotEnoughExamplesError", "TrainResult", "TrainingError", "train"]


def __getattr__(name: str):  # lazy: keep `import tdm_dagster.training` free of torch
    if name in __all__:
        from tdm_dagster.training import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
