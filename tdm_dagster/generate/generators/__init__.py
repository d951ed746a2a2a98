"""The built-in skill generators, by name.

``get_generator("SYLLO ")`` finds a generator whatever the case or surrounding spaces;
an unknown name raises ``UnknownSkillError``, which is both a ``KeyError`` (it is a
lookup) and a ``ValueError`` (it is usually a bad argument), and lists the known skills.
``problem_of(record)`` is a record's ``(skill, problem key)`` when its ``metadata.skill``
is a built-in skill whose generator can read the key from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tdm_dagster.generate.generators.base import Example, ProgressCallback, SkillGenerator
from tdm_dagster.generate.generators.binary import BinaryGenerator
from tdm_dagster.generate.generators.syllo import SylloGenerator

__all__ = [
    "SKILLS",
    "BinaryGenerator",
    "Example",
    "ProgressCallback",
    "SkillGenerator",
    "SylloGenerator",
    "UnknownSkillError",
    "get_generator",
    "problem_of",
    "skill_names",
]

SKILLS: dict[str, SkillGenerator] = {generator.skill: generator for generator in (SylloGenerator(), BinaryGenerator())}


class UnknownSkillError(KeyError, ValueError):
    def __str__(self) -> str:
        return str(self.args[0])


def skill_names() -> list[str]:
    return list(SKILLS)


def get_generator(name: str) -> SkillGenerator:
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return SKILLS[key]
    except (KeyError, TypeError):
        raise UnknownSkillError(f"unknown skill {name!r}; known skills: {', '.join(SKILLS)}") from None


def problem_of(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(skill, problem key)`` of a chat record (``messages`` and ``metadata``) whose
    ``metadata.skill`` names a built-in skill; None for any other record (users' own data),
    or when the generator cannot read the key from it."""
    metadata = record.get("metadata")
    skill = metadata.get("skill") if isinstance(metadata, Mapping) else None
    generator = SKILLS.get(skill.strip().lower()) if isinstance(skill, str) else None
    if generator is None:
        return None
    key = generator.example_key(dict(record))
    return (generator.skill, key) if key is not None else None
