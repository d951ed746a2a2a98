"""Augmentation: new records made from a version's records, each knowing where it came from.

``tdm datasets derive NAME --augment KIND`` adds, for every record a kind applies to, one
new record beside it (the originals stay). Kinds that keep answers verifiable, with no
model involved:

- ``reseed``: a record of a built-in generator skill (``metadata.skill``, e.g. the
  binary arithmetic skill) is drawn again by its generator from a new seed, same skill,
  level and operation: new numbers, and the answer computed by the generator, not
  edited text (``metadata.seed`` and ``metadata.answer`` are the new problem's);
- ``reorder``: a prompt of numbered parts (``1. ...`` / ``2) ...`` on their own lines)
  whose reply answers in as many numbered parts has both put in the same new order and
  renumbered, so each answer stays with its question;
- ``format``: the prompt in another wording of its frame (``Question: ...``,
  ``Task:\\n...``, ``... Answer step by step.``), the reply unchanged.

And ``model``, the hook for model-based augmentation: the inference server (an
OpenAI-compatible ``/v1/chat/completions``, ``auto_generate.host:port``) rewrites each
prompt; the reply is kept, so the rewrite must keep every number of the prompt, or the
record is skipped (counted as ``refused``) rather than paired with an answer that no
longer fits.

Each new record carries ``metadata.augmented_from = {"dataset", "version", "record"}``
(``record``: the sha256 of the source record's canonical JSON, its identity in the
registry) and ``metadata.augmentation = KIND``. Records that are themselves augmented
are not augmented again. Every kind is deterministic by ``seed`` (``model`` as
deterministic as the server). New records go through the gate like any other when
gated (``tdm validate``, ``datasets import``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tdm_dagster.datasets.records import Record, record_hash

KINDS = ("reseed", "reorder", "format", "model")
MAX_RESEED_DRAWS = 64
"""Fresh seeds tried for a problem of the same operation before a record is skipped."""
FORMATS = ("Question: {prompt}", "Task:\n{prompt}", "{prompt}\n\nAnswer step by step.")
REWRITE_INSTRUCTION = (
    "Rewrite the user's request in different words. Keep its meaning, every number and every name exactly; "
    "reply with the rewritten request only."
)
_NUMBERED = re.compile(r"^(\s*)(\d+)([.)])\s+", re.MULTILINE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

Rewrite = Callable[[str], str]


def _slots(record: Record) -> tuple[Any, Any] | None:
    """Where the record's prompt and reply live: message indexes of a chat's last user
    and last assistant turn, or the field names of an instruction or completion record."""
    messages = record.get("messages")
    if isinstance(messages, list):
        users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)]
        replies = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str)]
        return (users[-1], replies[-1]) if users and replies else None
    if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
        return ("input" if isinstance(record.get("input"), str) and record["input"].strip() else "instruction", "output")
    if isinstance(record.get("prompt"), str) and isinstance(record.get("completion"), str):
        return ("prompt", "completion")
    return None


def _text(record: Record, slot: Any) -> str:
    return record["messages"][slot]["content"] if isinstance(slot, int) else record[slot]


def _with_text(record: Record, changes: dict[Any, str]) -> Record:
    out = dict(record)
    if "messages" in out:
        out["messages"] = [{**m, "content": changes[i]} if i in changes else dict(m) for i, m in enumerate(out["messages"])]
    for slot, text in changes.items():
        if not isinstance(slot, int):
            out[slot] = text
    return out


def _rng(record: Record, seed: int, kind: str) -> random.Random:
    return random.Random(f"{kind}:{seed}:{record_hash(record).hex()}")


def reseed(record: Record, seed: int) -> Record | None:
    """The same skill, level and operation drawn by the skill's generator from a new seed."""
    from tdm_dagster.generate.generators import get_generator, skill_names
    from tdm_dagster.generate.generators.builtin import derive_seed

    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    skill, level = metadata.get("skill"), metadata.get("level")
    if skill not in skill_names() or not isinstance(level, int) or isinstance(level, bool):
        return None
    generator = get_generator(skill)
    base = _rng(record, seed, "reseed").getrandbits(63)
    for draw in range(1, MAX_RESEED_DRAWS + 1):
        [drawn] = generator.generate(level, 1, derive_seed(base, draw))
        if drawn["metadata"].get("operation") == metadata.get("operation") and drawn["messages"] != record.get("messages"):
            return {**drawn, "metadata": {**metadata, **drawn["metadata"]}}
    return None


def _parts(text: str) -> tuple[str, list[str], str] | None:
    """``text`` as (before, numbered parts 1..N without their numbers, after), N >= 2; else
    None. The last part ends at a blank line: what follows is ``after``."""
    found = list(_NUMBERED.finditer(text))
    if len(found) < 2 or [int(m.group(2)) for m in found] != list(range(1, len(found) + 1)):
        return None
    ends = [m.start() for m in found[1:]] + [len(text)]
    bodies = [text[m.end() : end].rstrip("\n") for m, end in zip(found, ends)]
    last, blank, after = text[found[-1].end() :].partition("\n\n")
    bodies[-1] = last
    return text[: found[0].start()], bodies, blank + after


def _numbered(before: str, parts: list[str], after: str, style: str) -> str:
    return before + "\n".join(f"{number}{style} {part}" for number, part in enumerate(parts, 1)) + after


def reorder(record: Record, seed: int) -> Record | None:
    """Numbered prompt parts and their numbered answers, both in one new order."""
    slots = _slots(record)
    if slots is None:
        return None
    prompt, reply = (_text(record, slot) for slot in slots)
    asked, answered = _parts(prompt), _parts(reply)
    if asked is None or answered is None or len(asked[1]) != len(answered[1]):
        return None
    order = list(range(len(asked[1])))
    rng = _rng(record, seed, "reorder")
    while order == sorted(order):
        rng.shuffle(order)
    styles = [_NUMBERED.search(text).group(3) for text in (prompt, reply)]
    new = [_numbered(before, [parts[i] for i in order], after, style) for (before, parts, after), style in zip((asked, answered), styles)]
    return _with_text(record, dict(zip(slots, new)))


def reformat(record: Record, seed: int) -> Record | None:
    """The prompt in another frame; the reply as it was."""
    slots = _slots(record)
    if slots is None:
        return None
    frame = _rng(record, seed, "format").choice(FORMATS)
    return _with_text(record, {slots[0]: frame.format(prompt=_text(record, slots[0]))})


def rewritten(record: Record, rewrite: Rewrite) -> Record | None:
    """The prompt as the model rewrote it, when the rewrite keeps every number of it."""
    slots = _slots(record)
    if slots is None:
        return None
    prompt = _text(record, slots[0])
    new = rewrite(prompt).strip()
    if not new or new == prompt.strip() or sorted(_NUMBER.findall(new)) != sorted(_NUMBER.findall(prompt)):
        return None
    return _with_text(record, {slots[0]: new})


def server_rewrite(client: Any, **payload: Any) -> Rewrite:
    """A rewrite through ``client`` (an ``InferenceClient``): one chat request per prompt."""
    return lambda prompt: client.chat([{"role": "system", "content": REWRITE_INSTRUCTION}, {"role": "user", "content": prompt}], **payload)


@dataclass(frozen=True)
class Augment:
    """A derive step: every record, plus one augmented record per record ``kind`` applies to."""

    kind: str
    dataset: str
    version: str
    seed: int = 0
    rewrite: Rewrite | None = None
    """For ``model``: prompt -> rewritten prompt (:func:`server_rewrite`)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown augmentation {self.kind!r}; known: {', '.join(KINDS)}")
        if self.kind == "model" and self.rewrite is None:
            raise ValueError("augmentation 'model' needs a rewrite function (the inference server)")

    def _augmented(self, record: Record) -> Record | None:
        if self.kind == "reseed":
            return reseed(record, self.seed)
        if self.kind == "reorder":
            return reorder(record, self.seed)
        if self.kind == "format":
            return reformat(record, self.seed)
        return rewritten(record, self.rewrite)

    def apply(self, records: list[Record]) -> tuple[list[Record], dict[str, Any]]:
        added: list[Record] = []
        already = not_applicable = 0
        for record in records:
            metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
            if "augmented_from" in metadata:
                already += 1
                continue
            made = self._augmented(record)
            if made is None:
                not_applicable += 1
                continue
            origin = {"dataset": self.dataset, "version": self.version, "record": record_hash(record).hex()}
            added.append({**made, "metadata": {**(made.get("metadata") or {}), "augmented_from": origin, "augmentation": self.kind}})
        out = [*records, *added]
        skipped = "refused" if self.kind == "model" else "not_applicable"
        return out, {"step": "augment", "kind": self.kind, "input": len(records), "output": len(out), "removed": 0,
                     "added": len(added), skipped: not_applicable, "already_augmented": already}  # fmt: skip
