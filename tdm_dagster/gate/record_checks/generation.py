"""What the generation itself says about a reply: ``metadata.finish_reason``.

An OpenAI-style API says why it stopped: ``stop`` (the model ended its reply) or
``length`` (it hit ``max_tokens``: the reply was cut off, whatever its last words look
like). Records that carry the API's answer (``metadata.finish_reason``, as logs and
imports of chat completions do) are judged on it: ``length`` is the ERROR
``content.cut_off``. Records without it are judged by their text
(``content.unfinished_ending``, :mod:`tdm_dagster.gate.text_quality`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tdm_dagster.gate.broken_replies import CUT_OFF, DESCRIPTIONS
from tdm_dagster.gate.record_checks.registry import register_quality_check
from tdm_dagster.records.issues import RecordIssue


@register_quality_check("tdm.finish_reason")
def finish_reason(record: Mapping[str, Any]) -> list[RecordIssue]:
    metadata = record.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("finish_reason") != "length":
        return []
    where = "metadata.finish_reason"
    return [RecordIssue("content", CUT_OFF, f"{where}: {DESCRIPTIONS[CUT_OFF]} ('length')", where, severity="ERROR")]
