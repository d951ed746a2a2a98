"""spaCy ``DocBin`` files (``.spacy``), the training input of ``spacy train``.

Each record becomes one ``Doc`` (tokenized by ``spacy.blank("en")``; no model needed):

- its text: the record's ``text`` string, or else its chat (any record spec) with the
  messages' contents joined by blank lines;
- text classification: a string ``label`` (or ``metadata.label``) sets ``doc.cats`` to
  1.0 for that label and 0.0 for every other label in the export;
- entities: ``entities: [[start, end, label], ...]`` (character offsets into ``text``)
  set ``doc.ents``; each span must start and end on token boundaries and spans must not
  overlap, as spaCy requires;
- labelled examples (spec ``labelled_v1``): ``expected_intent`` is the category and
  ``expected_entities`` (``[text, label, start, end]``) the entity spans.

The whole record is also kept in the Doc's ``user_data``, so our own exports import as
the identical records. A DocBin made elsewhere imports as ``{"text", "label"?,
"entities"?}``: the highest-scoring category and the entity spans. A file that
decompresses to over ``MAX_DOCBIN_BYTES`` is refused before spaCy inflates it.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdm_dagster.files.atomic import atomic_open
from tdm_dagster.formats.chat import record_messages
from tdm_dagster.formats.errors import FormatError
from tdm_dagster.formats.imported import ImportResult, collect
from tdm_dagster.ingest.source import RAW_PREVIEW_BYTES, SourceRecord, describe_place, read_issue
from tdm_dagster.ingest.text_bytes import parse_json_record
from tdm_dagster.records.strict_json import dumps_strict

if TYPE_CHECKING:
    from spacy.tokens import Doc

RECORD_KEY = "tdm_dagster.record"
MAX_DOCBIN_BYTES = 512 * 1024 * 1024
"""The most a DocBin may hold decompressed; a bigger one is refused (see ``_checked_bytes``)."""
_INFLATE_CHUNK_BYTES = 1 << 20
SUPPORTED_SHAPES = (
    "records with a string 'text' or any chat/alpaca/completion record; "
    "optional string 'label' or 'metadata.label'; optional 'entities' as [[start, end, label], ...]"
)


def _doc_text(record: dict[str, Any]) -> str:
    if isinstance(record.get("text"), str):
        return record["text"]
    return "\n\n".join(message["content"] for message in record_messages(record))


def _label(record: dict[str, Any]) -> str | None:
    metadata = record.get("metadata")
    label = record.get("label", metadata.get("label") if isinstance(metadata, dict) else None)
    label = record.get("expected_intent", label)
    if label is not None and not isinstance(label, str):
        raise ValueError(f"label must be a string, got {type(label).__name__}")
    return label


def _set_entities(doc: Doc, entities: Any) -> None:
    if not isinstance(entities, list):
        raise ValueError(f"entities: expected a list of [start, end, label], got {type(entities).__name__}")
    spans = []
    for entity in entities:
        if not (
            isinstance(entity, list | tuple)
            and len(entity) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) for n in entity[:2])
            and isinstance(entity[2], str)
        ):
            raise ValueError(f"entities: expected [start, end, label] items, got {entity!r}")
        span = doc.char_span(entity[0], entity[1], label=entity[2], alignment_mode="strict")
        if span is None:
            raise ValueError(f"entity {list(entity)} does not fall on token boundaries of {doc.text!r}")
        spans.append(span)
    try:
        doc.ents = spans
    except ValueError as exc:
        raise ValueError(f"entities overlap: {exc}") from exc


def _entity_spans(expected: Any) -> Any:
    """A labelled example's ``expected_entities`` as ``[start, end, label]`` spans (an item
    that is no entity is passed on for ``_set_entities`` to refuse)."""
    from tdm_dagster.gate.labelled import parse_entity

    if not isinstance(expected, list):
        return expected
    spans = []
    for item in expected:
        entity = parse_entity(item)
        spans.append([entity.start, entity.end, entity.label] if entity else item)
    return spans


def write_spacy(records: list[dict[str, Any]], path: Path) -> int:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    labels: list[str] = []
    per_record: list[tuple[str, str | None]] = []
    for position, record in enumerate(records):
        try:
            text, label = _doc_text(record), _label(record)
        except ValueError as exc:
            raise FormatError(path, f"record {position}: {exc}; supported: {SUPPORTED_SHAPES}") from exc
        per_record.append((text, label))
        if label is not None and label not in labels:
            labels.append(label)
    doc_bin = DocBin(store_user_data=True)
    for position, (record, (text, label)) in enumerate(zip(records, per_record, strict=True)):
        doc = nlp.make_doc(text)
        if label is not None:
            doc.cats = {name: float(name == label) for name in labels}
        if "entities" in record or "expected_entities" in record:
            try:
                _set_entities(doc, record["entities"] if "entities" in record else _entity_spans(record["expected_entities"]))
            except ValueError as exc:
                raise FormatError(path, f"record {position}: {exc}") from exc
        doc.user_data[RECORD_KEY] = dumps_strict(record, ensure_ascii=False)
        doc_bin.add(doc)
    with atomic_open(path, "wb") as handle:
        handle.write(doc_bin.to_bytes())
    return len(records)


def _doc_source(path: Path, index: int, doc: Doc) -> SourceRecord:
    """Our own export's record (strict JSON, as written), or a foreign Doc as ``{text, label?, entities?}``."""
    place = describe_place(str(path), index + 1, index, "doc")
    stored = doc.user_data.get(RECORD_KEY)
    if stored is None:
        record: dict[str, Any] = {"text": doc.text}
        if doc.cats:
            record["label"] = max(doc.cats, key=doc.cats.__getitem__)
        if doc.ents:
            record["entities"] = [[ent.start_char, ent.end_char, ent.label_] for ent in doc.ents]
        return SourceRecord(str(path), index + 1, doc.text.encode("utf-8", "surrogatepass"), record, None, index, "doc")
    if not isinstance(stored, str):
        issue = read_issue("not_an_object", f"{place}: the stored record is a {type(stored).__name__}, not JSON text",
                           "export the records again with tdm")  # fmt: skip
        return SourceRecord(str(path), index + 1, repr(stored)[:RAW_PREVIEW_BYTES].encode(), None, issue, index, "doc")
    raw = stored.encode("utf-8", "surrogatepass")
    value, issue = parse_json_record(raw, place, 0, 1)
    return SourceRecord(str(path), index + 1, raw, value, issue, index, "doc")


def _checked_bytes(path: Path) -> bytes:
    """The file's bytes, once they are known to decompress to at most ``MAX_DOCBIN_BYTES``.

    A DocBin is one zlib stream, which spaCy inflates whole: a small file can expand to
    gigabytes. The stream is inflated here first a chunk at a time and thrown away, so
    memory stays at one chunk, and a file over the limit is refused before spaCy sees it.
    """
    try:
        size = path.stat().st_size
        if size > MAX_DOCBIN_BYTES:
            raise FormatError(path, f"the file is {size} bytes, over the {MAX_DOCBIN_BYTES} byte limit for a DocBin")
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc}") from exc
    inflater = zlib.decompressobj()
    inflated = 0
    try:
        chunk = inflater.decompress(data, _INFLATE_CHUNK_BYTES)
        while chunk:
            inflated += len(chunk)
            if inflated > MAX_DOCBIN_BYTES:
                raise FormatError(path, f"refused: decompresses to over {MAX_DOCBIN_BYTES} bytes from {size} "
                                  "(a compression bomb, or a DocBin too big to import at once: split it)")  # fmt: skip
            chunk = inflater.decompress(inflater.unconsumed_tail, _INFLATE_CHUNK_BYTES)
    except zlib.error as exc:
        raise FormatError(path, f"not a spaCy DocBin (not zlib-compressed: {exc})") from exc
    return data


def read_spacy(path: Path) -> ImportResult:
    data = _checked_bytes(path)
    import spacy
    from spacy.tokens import DocBin

    try:
        docs = list(DocBin().from_bytes(data).get_docs(spacy.blank("en").vocab))
    except Exception as exc:  # a foreign binary file: spaCy and msgpack raise many kinds of error on bad data
        raise FormatError(path, f"not a spaCy DocBin: {exc}") from exc
    return collect(path, (_doc_source(path, index, doc) for index, doc in enumerate(docs)))
