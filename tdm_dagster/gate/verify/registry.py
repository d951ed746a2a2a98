"""Answer verifiers by skill: what a verifier is, and the registry users add theirs to.

A verifier judges one reply against the reference answer its record carries. It gets the
reference (``metadata.reference_answer``, else ``metadata.answer``), the reply (the
record's last assistant turn) and the record's metadata, and returns an
:class:`AnswerCheck`: whether the reply is right, and the expected and given values as
short text for the message a wrong answer gets. A reference the verifier cannot use
(the wrong type, say) raises :class:`UnusableReference`; the record is then noted
(INFO ``answer.unverifiable``) rather than rejected, since the reply may well be right.

Register a verifier for a skill (``metadata.skill``, matched case-insensitively) with
the decorator::

    from tdm_dagster.gate.verify import AnswerCheck, register_verifier

    @register_verifier("gsm8k")
    def gsm8k(reference, reply, metadata):
        given = reply.rsplit("####", 1)[-1].strip()
        return AnswerCheck(given == str(reference), str(reference), given)

Records whose skill has no verifier of its own get :data:`GENERIC`, the normalised-match
verifier; ``gate.verifiers`` in the config can point a skill at any registered name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tdm_dagster.gate.named_functions import NamedFunctions

GENERIC = "generic"
"""The verifier for skills without one of their own."""


class AnswerCheck(NamedTuple):
    """A verifier's answer: right or not, and the expected and given values as a reader
    would write them (``word, word``, ``1011``), for the message of a wrong answer."""

    correct: bool
    expected: str
    given: str


@dataclass(frozen=True)
class AnswerVerdict:
    """What a verifier decided for one record, kept on the gate outcome so later steps
    (heuristics, scores, reports) can respect a decision on correctness."""

    skill: str
    verifier: str
    correct: bool


class UnusableReference(ValueError):
    """The record's reference answer is not something this verifier can compare with."""


Verifier = Callable[[Any, str, Mapping[str, Any]], AnswerCheck]

_VERIFIERS: NamedFunctions[Verifier] = NamedFunctions("verifier", key=lambda name: name.strip().lower())


def _key(name: str) -> str:
    return _VERIFIERS.key(name)


def register_verifier(name: str, *, replace: bool = False) -> Callable[[Verifier], Verifier]:
    """Decorator: make ``function`` the verifier called ``name`` (also the skill it serves
    by default). Registering a taken name raises unless ``replace=True``, so two plugins
    cannot silently shadow each other."""
    return _VERIFIERS.register(name, replace=replace)


def unregister_verifier(name: str) -> None:
    """Remove a registered verifier (a plugin unloading, a test cleaning up)."""
    _VERIFIERS.unregister(name)


def verifier_names() -> list[str]:
    return sorted(_VERIFIERS)


def verifier_for(skill: str, chosen: Mapping[str, str] | None = None) -> tuple[str, Verifier]:
    """The verifier for ``skill``: the one ``chosen`` (``gate.verifiers``) names, else
    the one registered under the skill's name, else :data:`GENERIC`."""
    key = _key(skill)
    name = _key((chosen or {}).get(key, key if key in _VERIFIERS else GENERIC))
    if name not in _VERIFIERS:
        raise KeyError(f"gate.verifiers names verifier {name!r} for skill {key!r}, but no such verifier is registered "
                       f"(registered: {', '.join(verifier_names())})")  # fmt: skip
    return name, _VERIFIERS[name]
