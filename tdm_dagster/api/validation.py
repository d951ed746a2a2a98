"""``POST /v1/validate`` and the warm gate behind it.

``tdm validate`` pays seconds per call to import Great Expectations, build its context,
load the tokenizer and the language detector; the service pays that once. At start-up a
background thread validates a few generated records at every level, which loads all of
it (``/readyz`` says "gate warming up" until then), and every request after reuses the
process's GX context and tokenizer.

The upload is validated with the service's config and reported under the file name the
client sent (the CLI sends the path as its user typed it, so the report is the one the
CLI would print); errors in ``spec`` or ``answers`` are 422 naming the field.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile

from tdm_dagster.api.auth import require
from tdm_dagster.api.uploads import TEMP_PREFIX, client_view, saved

router = APIRouter(tags=["validate"])

WARM_RECORDS = 8


class WarmGate:
    """Warms the gate once, in the background; says whether it is warm, or why it failed."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.error: str | None = None
        self.seconds: float | None = None

    def start(self, config: Any) -> threading.Thread:
        thread = threading.Thread(target=self._warm, args=(config,), name="tdm-api-warm-gate", daemon=True)
        thread.start()
        return thread

    def _warm(self, config: Any) -> None:
        from tdm_dagster.files.atomic import atomic_write_jsonl
        from tdm_dagster.gate.run import LEVELS
        from tdm_dagster.gate.validate_file import validate_file
        from tdm_dagster.generate.generators import get_generator

        started = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX + "warm-") as folder:
                sample = Path(folder) / "warm.jsonl"
                atomic_write_jsonl(sample, get_generator("syllo").generate(1, WARM_RECORDS, 0))
                for level in LEVELS:
                    validate_file(sample, config, level=level)
        except Exception as error:  # noqa: BLE001 - readiness reports it; requests still run (cold)
            self.error = f"{type(error).__name__}: {error}"
        self.seconds = round(time.perf_counter() - started, 3)
        self.ready.set()

    def problem(self) -> str | None:
        if not self.ready.is_set():
            return "gate: warming up (loading Great Expectations, the tokenizer and the language detector)"
        return f"gate: warm-up failed: {self.error}" if self.error else None


@router.post("/v1/validate", dependencies=[Depends(require("read"))])
def validate(
    request: Request,
    file: UploadFile = File(description="The file to check, named with its extension."),
    spec: str | None = Form(None),
    level: Literal["quick", "standard", "deep"] | None = Form(None),
    answers: UploadFile | None = File(None, description="JSON Lines of reference answers by line or id."),
    against: list[UploadFile] = File([], description="Evaluation files to check leakage against (deep level)."),
) -> dict[str, Any]:
    """What the gate says of the file, as ``tdm validate --json`` prints it; nothing is written."""
    from tdm_dagster.gate.schemas import UnknownSpecError
    from tdm_dagster.gate.validate_file import validate_file
    from tdm_dagster.gate.verify.side_file import AnswersFileError

    state = request.app.state
    uploads = [("file", file), *([("answers", answers)] if answers else []), *(("against", upload) for upload in against)]
    started = time.perf_counter()
    with saved(request, uploads) as paths:
        config = state.config
        eval_files = paths[1 + bool(answers):]
        if eval_files:
            config = replace(config, gate=replace(config.gate, eval_sets=tuple(str(p) for p in eval_files)))
        try:
            result = validate_file(paths[0], config, spec=spec, level=level, home=state.home,
                                   answers=paths[1] if answers else None, shown_as=file.filename)  # fmt: skip
        except UnknownSpecError as exc:
            raise HTTPException(422, {"param": "spec", "message": str(exc)}) from exc
        except AnswersFileError as exc:
            raise HTTPException(422, {"param": "answers", "message": str(exc)}) from exc
    state.metrics.validate_seconds.labels(result["level"]).observe(time.perf_counter() - started)
    return client_view(result, request)
