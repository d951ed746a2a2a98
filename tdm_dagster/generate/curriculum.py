"""Curriculum state: which skill is active, each skill's level, and its evaluation history.

A skill advances one level (up to its generator's ``max_level``) once it has at least
``ADVANCE_WINDOW`` evaluations at its current level and the mean accuracy of the last
``ADVANCE_WINDOW`` of them is at least ``ADVANCE_ACCURACY``. Only evaluations recorded
since the skill last advanced count: the evaluation that triggers an advance is marked
with ``advanced_to``, and the window restarts after it.

Stored as JSON in ``$TDM_HOME/state/curriculum.json`` and written atomically. A missing
file means a fresh curriculum; a file that cannot be read as one raises ``ValueError``
naming the file and the problem, never a silent reset that would throw progress away.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tdm_dagster.files.atomic import atomic_write_json, read_json
from tdm_dagster.generate.generators import SKILLS, get_generator, skill_names
from tdm_dagster.home import TdmHome

ADVANCE_ACCURACY = 0.8
ADVANCE_WINDOW = 3
DEFAULT_ACTIVE_SKILL = "syllo"
FILE_VERSION = 1
_TOLERANCE = 1e-9
"""Float slack when comparing a mean to ``ADVANCE_ACCURACY``: (0.6 + 0.9 + 0.9) / 3 is
0.7999999999999999 in binary floating point, and it should advance."""


def curriculum_path(home: TdmHome) -> Path:
    return home.state_file("curriculum")


def _canonical_skill(name: str) -> str:
    """The registry's name for ``name``; an unknown skill raises ``ValueError``."""
    return get_generator(name).skill


def _check_level(skill: str, level: Any) -> int:
    max_level = SKILLS[skill].max_level
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= max_level:
        raise ValueError(f"level for {skill!r} must be an integer from 1 to {max_level}, got {level!r}")
    return level


def _check_accuracy(accuracy: Any) -> float:
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
        raise ValueError(f"accuracy must be a number from 0 to 1, got {accuracy!r}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be from 0 to 1 (a fraction, not a percentage), got {accuracy!r}")
    return float(accuracy)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Evaluation:
    level: int
    accuracy: float
    timestamp: str
    """ISO 8601, UTC."""
    note: str | None = None
    """Where the accuracy came from: a checkpoint, an eval run."""
    advanced_to: int | None = None
    """Set on the evaluation that made the skill advance, to the new level."""

    @classmethod
    def from_dict(cls, skill: str, data: Any) -> "Evaluation":
        if not isinstance(data, dict):
            raise ValueError(f"a {skill} history entry is not an object: {data!r}")
        unknown = data.keys() - {"level", "accuracy", "timestamp", "note", "advanced_to"}
        if unknown:
            raise ValueError(f"a {skill} history entry has unknown keys {sorted(unknown)}")
        timestamp, note, advanced_to = data.get("timestamp"), data.get("note"), data.get("advanced_to")
        if not isinstance(timestamp, str):
            raise ValueError(f"a {skill} history entry has no timestamp string: {data!r}")
        if note is not None and not isinstance(note, str):
            raise ValueError(f"a {skill} history entry has a non-string note: {data!r}")
        return cls(
            level=_check_level(skill, data.get("level")),
            accuracy=_check_accuracy(data.get("accuracy")),
            timestamp=timestamp,
            note=note,
            advanced_to=None if advanced_to is None else _check_level(skill, advanced_to),
        )


@dataclass(frozen=True)
class AdvanceRequirement:
    """The cheapest way to advance: ``evaluations`` more, averaging ``mean_accuracy``."""

    evaluations: int
    mean_accuracy: float


def _default_levels() -> dict[str, int]:
    return {name: 1 for name in skill_names()}


def _empty_history() -> dict[str, list[Evaluation]]:
    return {name: [] for name in skill_names()}


@dataclass
class CurriculumState:
    active_skill: str = DEFAULT_ACTIVE_SKILL
    levels: dict[str, int] = field(default_factory=_default_levels)
    history: dict[str, list[Evaluation]] = field(default_factory=_empty_history)

    def __post_init__(self) -> None:
        """Check every field and fill in skills added since the state was saved
        (level 1, no history), so the rest of the class can index by any known skill."""
        self.active_skill = _canonical_skill(self.active_skill)
        for skill in [*self.levels, *self.history]:
            if skill not in SKILLS:
                raise ValueError(f"unknown skill {skill!r}; known skills: {', '.join(SKILLS)}")
        self.levels = {skill: _check_level(skill, self.levels.get(skill, 1)) for skill in SKILLS}
        self.history = {skill: list(self.history.get(skill, [])) for skill in SKILLS}

    # --- persistence --------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> "CurriculumState":
        """The state saved at ``path``; defaults when there is no file yet."""
        try:
            data = read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"curriculum file {path} is not valid JSON: {exc}") from exc
        if data is None:
            return cls()
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"curriculum file {path} is invalid: {exc}") from exc

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FILE_VERSION,
            "active_skill": self.active_skill,
            "skills": {
                skill: {"level": self.levels[skill], "history": [asdict(entry) for entry in self.history[skill]]}
                for skill in SKILLS
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> "CurriculumState":
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("version") != FILE_VERSION:
            raise ValueError(f"version is {data.get('version')!r}; this tdm reads version {FILE_VERSION}")
        skills = data.get("skills")
        if not isinstance(skills, dict) or not all(isinstance(entry, dict) for entry in skills.values()):
            raise ValueError("'skills' must be an object mapping each skill to {level, history}")
        active = data.get("active_skill")
        if not isinstance(active, str):
            raise ValueError(f"'active_skill' must be a skill name, got {active!r}")
        history: dict[str, list[Evaluation]] = {}
        for skill, entry in skills.items():
            entries = entry.get("history", [])
            if not isinstance(entries, list):
                raise ValueError(f"{skill}: 'history' must be a list")
            if skill in SKILLS:
                history[skill] = [Evaluation.from_dict(skill, item) for item in entries]
        levels = {skill: entry.get("level") for skill, entry in skills.items()}
        return cls(active_skill=active, levels=levels, history=history)

    # --- queries and updates ------------------------------------------------------

    def level_of(self, skill: str) -> int:
        return self.levels[_canonical_skill(skill)]

    def set_active(self, skill: str) -> None:
        self.active_skill = _canonical_skill(skill)

    def window(self, skill: str) -> list[Evaluation]:
        """The evaluations that count toward the next advance, oldest first: those at the
        current level recorded since the skill last advanced."""
        skill = _canonical_skill(skill)
        entries = self.history[skill]
        start = next((i + 1 for i in range(len(entries) - 1, -1, -1) if entries[i].advanced_to is not None), 0)
        level = self.levels[skill]
        return [entry for entry in entries[start:] if entry.level == level]

    def record_evaluation(self, skill: str, accuracy: float, *, level: int | None = None, note: str | None = None) -> bool:
        """Add an evaluation (``level`` defaults to the skill's current level) and advance
        the skill if the rule is now met; True when it advanced. An evaluation at another
        level is kept in the history but never counts toward advancing."""
        skill = _canonical_skill(skill)
        entry = Evaluation(
            level=self.levels[skill] if level is None else _check_level(skill, level),
            accuracy=_check_accuracy(accuracy),
            timestamp=_now(),
            note=note,
        )
        self.history[skill].append(entry)
        if not self._meets_advance_rule(skill):
            return False
        self.levels[skill] += 1
        self.history[skill][-1] = replace(entry, advanced_to=self.levels[skill])
        return True

    def _meets_advance_rule(self, skill: str) -> bool:
        if self.levels[skill] >= SKILLS[skill].max_level:
            return False
        recent = self.window(skill)[-ADVANCE_WINDOW:]
        if len(recent) < ADVANCE_WINDOW:
            return False
        return sum(entry.accuracy for entry in recent) / ADVANCE_WINDOW >= ADVANCE_ACCURACY - _TOLERANCE

    def advance_requirement(self, skill: str) -> AdvanceRequirement | None:
        """Fewest further evaluations at the current level (and the mean accuracy they
        need) that would advance the skill; None at its max level."""
        skill = _canonical_skill(skill)
        if self.levels[skill] >= SKILLS[skill].max_level:
            return None
        window = self.window(skill)
        for more in range(max(1, ADVANCE_WINDOW - len(window)), ADVANCE_WINDOW):
            kept = window[len(window) - (ADVANCE_WINDOW - more):]
            needed = (ADVANCE_ACCURACY * ADVANCE_WINDOW - sum(e.accuracy for e in kept)) / more
            if needed <= 1.0 + _TOLERANCE:
                return AdvanceRequirement(more, max(0.0, needed))
        return AdvanceRequirement(ADVANCE_WINDOW, ADVANCE_ACCURACY)

    def format_status(self) -> str:
        """A table for ``tdm curriculum status``: one row per skill, ``*`` marks the active one."""
        header = ("", "skill", "level", "last accuracies", "to advance")
        rows = [header]
        for skill in SKILLS:
            rows.append((
                "*" if skill == self.active_skill else "",
                skill,
                f"{self.levels[skill]}/{SKILLS[skill].max_level}",
                self._describe_recent(skill),
                self._describe_requirement(skill),
            ))
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        rule = f"Advance: mean accuracy >= {ADVANCE_ACCURACY:.2f} over the last {ADVANCE_WINDOW} evaluations at the current level."
        return "\n".join([*lines, "", rule])

    def _describe_recent(self, skill: str) -> str:
        """The last few accuracies, oldest first, each tagged with its level when that
        is not the current one (so they visibly do not count)."""
        level = self.levels[skill]
        recent = self.history[skill][-ADVANCE_WINDOW:]
        return " ".join(f"{e.accuracy:.2f}" + ("" if e.level == level else f"@L{e.level}") for e in recent) or "-"

    def _describe_requirement(self, skill: str) -> str:
        requirement = self.advance_requirement(skill)
        if requirement is None:
            return "at max level"
        # Round up, so that the accuracy shown is always enough.
        shown = math.ceil(requirement.mean_accuracy * 100 - _TOLERANCE * 100) / 100
        if requirement.evaluations == 1:
            return f"1 more evaluation at >= {shown:.2f}"
        return f"{requirement.evaluations} more evaluations averaging >= {shown:.2f}"
