"""Ingest: read inbox files record by record and map their source shapes to our specs.

Plain Python, no Dagster. ``read_records`` streams a file's records (each parsed, or
with why it could not be read) and raises ``FileProblem`` for whole-file problems;
``map_source``/``map_record`` turn a record into spec records or say why not.
"""

from tdm_dagster.ingest.readers import DEFAULT_MAX_RECORD_BYTES, SUPPORTED_EXTENSIONS, read_records
from tdm_dagster.ingest.shapes import (
    SHAPES,
    MappedRecord,
    common_spec,
    map_record,
    map_source,
)
from tdm_dagster.ingest.source import FileProblem, SourceRecord

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "SHAPES",
    "SUPPORTED_EXTENSIONS",
    "FileProblem",
    "MappedRecord",
    "SourceRecord",
    "common_spec",
    "map_record",
    "map_source",
    "read_records",
]
