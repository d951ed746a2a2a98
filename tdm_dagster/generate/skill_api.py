"""HTTP API serving the built-in skill generators.

The seed design runs one instance per skill (SYLLO on 8080, Binary on 8090), so a slow
batch for one skill never blocks another; ``create_app(skills=[...])`` picks which skills
an instance serves. Generation is deterministic, so a client gets exactly the examples it
would have generated locally for the same (skill, level, count, seed).

Run one with ``serve(port=8080, skills=["syllo"])``.

Limits: a request body over ``MAX_BODY_BYTES`` gets 413 before it is read whole; ``count``
is 1..``MAX_COUNT``; error replies never echo the request's values back (a validation
error names the field and the rule, and a skill name is shown cut to a few characters).
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tdm_dagster.generate.generators import get_generator, skill_names
from tdm_dagster.http.limits import BodyLimit, shorten, uvicorn_settings, validation_problems

MAX_COUNT = 10_000
"""Examples per request; a larger ``count`` gets 422 (ask in several requests, other seeds)."""
MAX_BODY_BYTES = 1024 * 1024
MAX_SHOWN_SKILL_CHARS = 64


class GenerateRequest(BaseModel):
    """Strict, so ``"3"`` or ``true`` is refused rather than quietly read as a number."""

    model_config = ConfigDict(extra="forbid", strict=True)

    skill: str
    level: int
    count: int = Field(ge=1, le=MAX_COUNT)
    seed: int


def create_app(skills: list[str] | None = None) -> FastAPI:
    """An app serving ``skills`` (all built-in skills when ``None``; names as
    ``get_generator`` accepts them, so ``"SYLLO"`` works too).

    Raises ``ValueError`` for a skill that does not exist, so a typo in a deployment
    fails at start-up rather than as 404s later.
    """
    known = skill_names()
    try:
        chosen = [get_generator(name) for name in (known if skills is None else skills)]
    except ValueError as exc:
        raise ValueError(f"cannot serve skills {skills}: {exc}") from exc
    generators = {generator.skill: generator for generator in chosen}
    served = list(generators)

    app = FastAPI(title="tdm skill API", version="1")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default reply carries each offending ``input`` whole: 1 MiB in, 1 MiB out
        return JSONResponse(status_code=422, content={"detail": validation_problems(exc.errors())})

    def _reject(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": message})

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, reject=_reject)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "skills": served}

    @app.get("/v1/skills")
    def list_skills() -> list[dict[str, Any]]:
        return [
            {"name": name, "spec": generator.spec, "max_level": generator.max_level}
            for name, generator in generators.items()
        ]

    @app.post("/v1/generate")
    def generate(request: GenerateRequest) -> dict[str, Any]:
        # A plain ``def``: FastAPI runs it in a worker thread, so a large CPU-bound batch
        # does not stall /health.
        generator = generators.get(request.skill)
        if generator is None:
            reason = "is not served by this instance" if request.skill in known else "does not exist"
            raise HTTPException(
                status_code=404,
                detail=f"skill {shorten(request.skill, MAX_SHOWN_SKILL_CHARS)!r} {reason}; this instance serves {served}",
            )
        try:
            examples = generator.generate(request.level, request.count, request.seed)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=shorten(str(exc))) from exc
        return {
            "skill": request.skill,
            "spec": generator.spec,
            "level": request.level,
            "seed": request.seed,
            "examples": examples,
        }

    return app


def serve(host: str = "127.0.0.1", port: int = 8080, skills: list[str] | None = None) -> None:
    """Run an instance, with tdm's connection limits, until interrupted. Loopback by
    default: opening it to the network is a deliberate choice (``host="0.0.0.0"``)."""
    uvicorn.run(create_app(skills), host=host, port=port, **uvicorn_settings())
