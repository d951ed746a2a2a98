"""Which checkpoint ``tdm deploy`` deploys: the best evaluated one, the newest evaluated
(with ``force``), or the one the user named, however a user would name it.

A name is tried as, in order:

1. an evaluated checkpoint (``state/metrics_history.jsonl``): its path, its training run
   (``training/RUN/checkpoints/checkpoint-N``: ``RUN``), its folder name
   (``checkpoint-N``, the newest evaluated of that name) or ``RUN/checkpoint-N``; it
   deploys with its score;
2. a folder, as given (relative to the working directory) or under
   ``$TDM_HOME/training``: a checkpoint folder, or a training run (its newest complete
   checkpoint); it deploys with the score of its evaluation if it had one, else none.

When nothing matches, the message says what was looked for and where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdm_dagster.training.checkpoints import CHECKPOINTS_DIR, latest


def choose_checkpoint(history: list[dict[str, Any]], wanted: str | None, *, newest: bool,
                      training_dir: Path) -> dict[str, Any] | str:
    """``{"checkpoint": path, "score": accuracy or None}``, or why there is none: the
    checkpoint ``wanted`` names (module docstring), else the newest evaluated (``newest``)
    or the best (highest accuracy, then lowest held-out loss)."""
    if wanted:
        return _named(history, wanted, training_dir)
    if not history:
        return "no evaluated checkpoint yet: materialize checkpoint_evaluation first"
    item = history[-1] if newest else max(history, key=lambda h: (h["overall_accuracy"], -(h["held_out_loss"] or float("inf"))))
    return {"checkpoint": item["checkpoint"], "score": item["overall_accuracy"]}


def _names_of(checkpoint: Path) -> set[str]:
    run = checkpoint.parent.parent.name
    return {str(checkpoint), str(checkpoint.resolve()), run, checkpoint.name, f"{run}/{checkpoint.name}"}


def _score_of(history: list[dict[str, Any]], folder: Path) -> float | None:
    resolved = folder.resolve()
    return next((item["overall_accuracy"] for item in reversed(history) if Path(item["checkpoint"]).resolve() == resolved), None)


def _named(history: list[dict[str, Any]], wanted: str, training_dir: Path) -> dict[str, Any] | str:
    for item in reversed(history):
        if wanted in _names_of(Path(item["checkpoint"])):
            return {"checkpoint": item["checkpoint"], "score": item["overall_accuracy"]}
    run, _, name = wanted.partition("/")
    places = [Path(wanted).expanduser(), training_dir / wanted]
    if name and "/" not in name:
        places.append(training_dir / run / CHECKPOINTS_DIR / name)
    for place in places:
        if not place.is_dir():
            continue
        if (place / CHECKPOINTS_DIR).is_dir():  # a training run: its newest complete checkpoint
            newest = latest(place)
            if newest is None:
                return f"training run {wanted!r} ({place}) has no complete checkpoint yet"
            place = newest.path
        return {"checkpoint": str(place.resolve()), "score": _score_of(history, place)}
    looked = ", ".join(str(place) for place in dict.fromkeys(places))
    return (f"no checkpoint {wanted!r}: it names no evaluated checkpoint (run, checkpoint-N or path in "
            f"the evaluation history), and no folder {looked} exists")
