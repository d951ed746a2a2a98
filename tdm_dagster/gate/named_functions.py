"""A registry of functions by name, for what users plug into the gate (answer verifiers,
record checks): one decorator, one refusal of a taken name, one way to remove."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class NamedFunctions(Generic[F]):
    """Functions of one ``kind`` ("verifier", "quality check") by name. ``key`` turns a
    given name into the stored one (stripped; verifiers also lower-case theirs)."""

    def __init__(self, kind: str, key: Callable[[str], str] = str.strip) -> None:
        self.kind = kind
        self.key = key
        self._functions: dict[str, F] = {}

    def register(self, name: str, *, replace: bool = False) -> Callable[[F], F]:
        """Decorator: make ``function`` the one called ``name``. A taken name raises unless
        ``replace=True``, so two plugins cannot silently shadow each other."""

        def register(function: F) -> F:
            key = self.key(name)
            if not key:
                raise ValueError(f"a {self.kind} needs a non-empty name")
            if self._functions.get(key, function) is not function and not replace:
                raise ValueError(f"a {self.kind} named {key!r} is already registered; pass replace=True to replace it")
            self._functions[key] = function
            return function

        return register

    def unregister(self, name: str) -> None:
        """Remove one (a plugin unloading, a test cleaning up)."""
        self._functions.pop(self.key(name), None)

    def __contains__(self, name: str) -> bool:
        return name in self._functions

    def __getitem__(self, name: str) -> F:
        return self._functions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def items(self) -> list[tuple[str, F]]:
        return list(self._functions.items())
