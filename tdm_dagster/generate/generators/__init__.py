"""The skill generators, by name: the built-in ones and yours.

Yours come, like verifiers and record checks, from three places: the decorator
(:func:`register_generator` on a class, in a module your code location imports), the
config (``auto_generate.generators: ["my_generators:Countdown"]``), and an installed
package's entry points in group :data:`ENTRY_POINT_GROUP`
(``[project.entry-points."tdm_dagster.generators"] countdown = "my_generators:Countdown"``).
A generator is a class whose instances provide :class:`SkillGenerator` (``skill``,
``spec``, ``max_level``, ``generate``, ``check_answer``, ``example_key``); it is made once
per process. One that does not load stops the lookup with :class:`GeneratorError` naming
it; a name taken twice is refused.

``get_generator("SYLLO ")`` finds a generator whatever the case or surrounding spaces;
an unknown name raises ``UnknownSkillError``, which is both a ``KeyError`` (it is a
lookup) and a ``ValueError`` (it is usually a bad argument), and lists the known skills.
``problem_of(record)`` is a record's ``(skill, problem key)`` when its ``metadata.skill``
is a built-in skill whose generator can read the key from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from tdm_dagster.generate.generators.base import Example, ProgressCallback, SkillGenerator
from tdm_dagster.generate.generators.binary import BinaryGenerator
from tdm_dagster.generate.generators.syllo import SylloGenerator
from tdm_dagster.gate.named_functions import NamedFunctions

__all__ = [
    "SKILLS",
    "ENTRY_POINT_GROUP",
    "BinaryGenerator",
    "Example",
    "GeneratorError",
    "ProgressCallback",
    "SkillGenerator",
    "SylloGenerator",
    "UnknownSkillError",
    "get_generator",
    "problem_of",
    "register_generator",
    "unregister_generator",
    "skill_names",
]

SKILLS: dict[str, SkillGenerator] = {generator.skill: generator for generator in (SylloGenerator(), BinaryGenerator())}
"""The built-in generators."""
ENTRY_POINT_GROUP = "tdm_dagster.generators"
_REGISTERED: NamedFunctions[Callable[[], SkillGenerator]] = NamedFunctions("generator", key=lambda name: name.strip().lower())


class UnknownSkillError(KeyError, ValueError):
    def __str__(self) -> str:
        return str(self.args[0])


class GeneratorError(ValueError):
    """A generator that was asked for cannot be loaded; the message names it and why."""


def register_generator(name: str, *, replace: bool = False) -> Callable[[type], type]:
    """Class decorator: the generator called ``name`` is an instance of the class."""
    return _REGISTERED.register(name, replace=replace)


def unregister_generator(name: str) -> None:
    """Remove a registered generator (a plugin unloading, a test cleaning up)."""
    _REGISTERED.unregister(name)


def _made(where: str, factory: Any) -> SkillGenerator:
    try:
        generator = factory()
    except Exception as error:
        raise GeneratorError(f"{where}: cannot make the generator: {type(error).__name__}: {error}") from None
    missing = [part for part in ("skill", "spec", "max_level", "generate", "check_answer", "example_key") if not hasattr(generator, part)]
    if missing:
        raise GeneratorError(f"{where}: a {type(generator).__name__} is not a skill generator (it has no {', '.join(missing)})")
    return generator


@cache
def _installed() -> tuple[tuple[str, SkillGenerator], ...]:
    """The installed packages' generators (loaded and made once per process)."""
    found = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name):
        where = f"entry point {point.name!r} ({point.value}) in group {ENTRY_POINT_GROUP}"
        try:
            factory = point.load()
        except Exception as error:
            raise GeneratorError(f"{where}: cannot load: {type(error).__name__}: {error}") from None
        found.append((point.name.strip().lower(), _made(where, factory)))
    return tuple(found)


@cache
def _configured(reference: str) -> SkillGenerator:
    """``module:Class`` from ``auto_generate.generators``, made once per process."""
    module_name, _, attribute = reference.partition(":")
    where = f"auto_generate.generators: {reference!r}"
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:  # ImportError, AttributeError, or whatever the module raises on import
        raise GeneratorError(f"{where}: cannot load: {type(error).__name__}: {error}") from None
    return _made(where, factory)


@cache
def _registered(name: str, factory: Callable[[], SkillGenerator]) -> SkillGenerator:
    return _made(f"generator {name!r}", factory)


def generators(references: tuple[str, ...] = ()) -> dict[str, SkillGenerator]:
    """Every generator by skill name: the built-in ones, the registered ones, the installed
    entry points', then ``references`` (``auto_generate.generators``); a name once."""
    found = dict(SKILLS)
    plugged = [(name, _registered(name, factory)) for name, factory in _REGISTERED.items()]
    plugged += list(_installed())
    plugged += [(generator.skill.strip().lower(), generator) for generator in map(_configured, references)]
    for name, generator in plugged:
        if found.setdefault(name, generator) is not generator:
            raise GeneratorError(f"two generators are called {name!r} (a built-in, registered, installed or configured one); rename one")
    return found


def _configured_references() -> tuple[str, ...]:
    """``auto_generate.generators`` of the home's config (read when a name is not found
    among the others: a lookup of a built-in skill reads no config)."""
    from tdm_dagster.config.settings import load_config

    return load_config().auto_generate.generators


def skill_names() -> list[str]:
    """The built-in, registered and installed skills (configured ones are found by
    :func:`get_generator`, which reads the config only for a name it does not know)."""
    return list(generators())


def get_generator(name: str) -> SkillGenerator:
    key = name.strip().lower() if isinstance(name, str) else name
    known = generators()
    if key not in known and isinstance(key, str):
        known = generators(_configured_references())
    try:
        return known[key]
    except (KeyError, TypeError):
        raise UnknownSkillError(f"unknown skill {name!r}; known skills: {', '.join(known)}") from None


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
