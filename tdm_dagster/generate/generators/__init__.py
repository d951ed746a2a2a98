"""The built-in skill generators, by name.

``get_generator("SYLLO ")`` finds a generator whatever the case or surrounding spaces;
an unknown name raises ``UnknownSkillError``, which is both a ``KeyError`` (it is a
lookup) and a ``ValueError`` (it is usually a bad argument), and lists the known skills.
"""

from __future__ import annotations

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
