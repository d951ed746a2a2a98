"""The profiles by name, and applying one to a run's examples (see the package's docstring)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from tdm_dagster.gate.named_functions import NamedFunctions

Example = dict[str, Any]
Profile = Callable[..., Example]
ENTRY_POINT_GROUP = "tdm_dagster.profiles"

_PROFILES: NamedFunctions[Profile] = NamedFunctions("profile")


class ProfileError(ValueError):
    """A profile that cannot be loaded, or that failed on an example; the message says which."""


def register_profile(name: str, *, replace: bool = False) -> Callable[[Profile], Profile]:
    """Decorator: make ``function`` the profile called ``name`` (a taken name raises unless ``replace=True``)."""
    return _PROFILES.register(name, replace=replace)


def unregister_profile(name: str) -> None:
    _PROFILES.unregister(name)


def profile_names() -> list[str]:
    return sorted(_PROFILES)


def find_profile(name: str) -> Profile:
    """The profile called ``name``: registered, else an entry point, else ``module:function``."""
    if name in _PROFILES:
        return _PROFILES[name]
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            return _callable(name, point.load())
        except Exception as error:
            raise ProfileError(f"profile {name!r}: entry point {point.value} cannot be loaded: {type(error).__name__}: {error}") from None
    module_name, colon, attribute = name.partition(":")
    if not colon:
        raise ProfileError(f"no profile named {name!r} (known: {', '.join(profile_names())}; or give module:function)")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:  # ImportError, AttributeError, or whatever the module raises on import
        raise ProfileError(f"profile {name!r} cannot be loaded: {type(error).__name__}: {error}") from None
    return _callable(name, found)


def _callable(name: str, found: Any) -> Profile:
    if not callable(found):
        raise ProfileError(f"profile {name!r} is a {type(found).__name__}, not a function of an example")
    return found


def apply_profile(examples: Sequence[Example], name: str, options: Mapping[str, Any] | None = None) -> tuple[list[Example], dict[str, Any]]:
    """Every example through profile ``name``; returns them and what goes into the lineage
    (the profile's name, options, and how many examples it changed)."""
    profile = find_profile(name)
    out = []
    for position, example in enumerate(examples):
        try:
            changed = profile(example, **dict(options or {}))
        except Exception as error:
            raise ProfileError(f"profile {name!r} failed on example {position}: {type(error).__name__}: {error}") from error
        if not (isinstance(changed, dict) and isinstance(changed.get("messages"), list)):
            raise ProfileError(f"profile {name!r} returned a {type(changed).__name__} for example {position}, not a chat example")
        out.append(changed)
    summary = {"name": name, "options": dict(options or {}), "examples": len(out),
               "changed": sum(1 for before, after in zip(examples, out) if before != after)}  # fmt: skip
    return out, summary


def replies_rewritten(example: Example, rewrite: Callable[[str], str]) -> Example:
    """A copy of ``example`` with ``rewrite`` applied to every assistant turn's content."""
    messages = [
        {**message, "content": rewrite(message["content"])} if message.get("role") == "assistant" and isinstance(message.get("content"), str) else dict(message)
        for message in example["messages"]
    ]  # fmt: skip
    return {**example, "messages": messages}
