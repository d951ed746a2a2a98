"""An OpenAI-compatible HTTP server for the checkpoint deployed in a serving folder.

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /admin/reload`` (needs ``Authorization: Bearer $TDM_SERVING_ADMIN_TOKEN``).

This module holds the HTTP side: request validation and limits, the OpenAI error shape
and the admin token. Which model answers, and how it is reloaded when the ``current``
pointer moves, is :mod:`tdm_dagster.serving.model`; how concurrent requests are batched
into one generate call without blocking the event loop is :mod:`tdm_dagster.serving.batching`.
``/health``'s GPU stats have the shape :mod:`tdm_dagster.http.gpu_stats` defines, the one
the inference client reads.
"""

from __future__ import annotations

import hmac
import os
import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from tdm_dagster.http.gpu_stats import health_gpus, local_gpu_stats
from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.serving.batching import DynamicBatcher
from tdm_dagster.serving.generation_queue import ServerBusy
from tdm_dagster.serving.model import (
    MAX_TOKENS_LIMIT,
    GenerationParams,
    LoadedModel,
    ModelManager,
    PromptTooLong,
    process_memory,
    read_pointer,
)

# Request limits: anything beyond these is refused with a 4xx and a clear message
# (and ``MAX_TOKENS_LIMIT``, the model's own bound on one completion).
MAX_BODY_BYTES = 256 * 1024
MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 32_000
DEFAULT_MAX_TOKENS = 64


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: StrictStr = Field(max_length=MAX_MESSAGE_CHARS)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(default=1.0, ge=0, le=2, strict=True, allow_inf_nan=False)
    top_p: float = Field(default=1.0, gt=0, le=1, strict=True, allow_inf_nan=False)
    n: StrictInt = Field(default=1, ge=1, le=1)
    stream: StrictBool = False


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                           "param": param, "code": code}},
    )


def admin_token_problem(expected: str | None, authorization: str | None) -> tuple[int, str] | None:
    """Why a request to an admin endpoint is refused (status, message), or None.

    Refused when the server has no token (``TDM_SERVING_ADMIN_TOKEN`` unset) or the
    request's ``Authorization: Bearer`` token differs; compared in constant time. The
    messages never contain either token.
    """
    if not expected:
        return 403, f"admin endpoints are disabled: start the server with {ADMIN_TOKEN_ENV} set"
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return 401, f"missing or wrong admin token: send Authorization: Bearer ${ADMIN_TOKEN_ENV}"
    return None


def create_app(serving_dir: str | os.PathLike[str], admin_token: str | None = None) -> Any:
    """The FastAPI app serving the checkpoint named by ``serving_dir/current``.

    ``admin_token`` (default: ``$TDM_SERVING_ADMIN_TOKEN``) is required by ``/admin/reload``;
    without one, admin endpoints are refused.
    """
    from fastapi import FastAPI, Header, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from tdm_dagster.http.limits import BodyLimit, shorten, validation_problems

    admin_token = admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None
    manager = ModelManager(serving_dir)
    batcher = DynamicBatcher()
    app = FastAPI(title="tdm serving", docs_url=None, redoc_url=None)
    app.state.manager = manager
    app.state.batcher = batcher
    manager.maybe_reload(wait=True)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
        problems = []
        first_param = None
        for err in validation_problems(exc.errors()):
            loc = ".".join(str(p) for p in err["loc"] if p != "body")
            first_param = first_param or loc or None
            problems.append(f"{loc or 'body'}: {err['msg']}")
        return _error(400, "invalid request: " + "; ".join(problems), first_param, "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        # e.g. a body JSON cannot parse (an integer of 5,000 digits): the OpenAI error shape too
        return _error(exc.status_code, shorten(str(exc.detail)), code="invalid_request")

    def _reject(status: int, message: str) -> Any:
        return _error(status, message, code="request_too_large" if status == 413 else "invalid_request")

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, reject=_reject)

    async def _checked_model() -> LoadedModel | None:
        """The served model, after loading the one the pointer names if it moved. Runs on
        the event loop; only a load goes to a worker thread."""
        if manager.pointer_moved():
            await run_in_threadpool(manager.maybe_reload, wait=False)
        return manager.current

    @app.get("/health")
    async def health() -> Any:
        from fastapi.responses import JSONResponse

        current = await _checked_model()
        pointer, _ = read_pointer(manager.serving_dir)
        body = {
            "status": "ok" if current is not None else "no_model",
            "model": current.name if current else None,
            "checkpoint": str(current.path) if current else None,
            "pointer": pointer,
            "device": current.device if current else None,
            "loaded_at": current.loaded_at if current else None,
            "reloads": manager.reloads,
            "memory": process_memory(),
            **health_gpus(local_gpu_stats()),
            "batches": {**batcher.stats, "pending": batcher.pending},
            "last_error": manager.last_error,
        }
        return JSONResponse(status_code=200 if current is not None else 503, content=body)

    @app.get("/v1/models")
    async def models() -> Any:
        current = await _checked_model()
        data = []
        if current is not None:
            data.append({"id": current.name, "object": "model", "created": int(current.loaded_at),
                         "owned_by": "tdm"})
        return {"object": "list", "data": data}

    @app.post("/admin/reload")
    async def admin_reload(authorization: str | None = Header(default=None)) -> Any:
        from fastapi.responses import JSONResponse

        refused = admin_token_problem(admin_token, authorization)
        if refused:
            return _error(refused[0], refused[1], code="forbidden" if refused[0] == 403 else "unauthorized")
        result = await run_in_threadpool(manager.maybe_reload, force=True, wait=True)
        status = 200 if result["loaded"] else 409 if result["pointer"] is not None else 503
        return JSONResponse(status_code=status, content=result)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatRequest) -> Any:
        if request.stream:
            return _error(400, "stream=true is not supported by this server", "stream", "unsupported")
        current = await _checked_model()
        if current is None:
            return _error(503, "no model is deployed (serving_dir/current is missing or failed to load)",
                          code="no_model")
        max_tokens = request.max_tokens or request.max_completion_tokens or DEFAULT_MAX_TOKENS
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            out = await batcher.run(current, GenerationParams(messages, max_tokens, request.temperature, request.top_p))
        except PromptTooLong as exc:
            return _error(400, str(exc), "messages", "context_length_exceeded")
        except ServerBusy as exc:
            return _error(503, str(exc), code="server_busy")
        except RuntimeError as exc:  # e.g. sampling from logits that are not finite
            return _error(500, shorten(f"generation failed: {exc}"), code="generation_failed")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": current.name,
            "system_fingerprint": current.name,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": out["content"]},
                "finish_reason": out["finish_reason"],
                "logprobs": None,
            }],
            "usage": {
                "prompt_tokens": out["prompt_tokens"],
                "completion_tokens": out["completion_tokens"],
                "total_tokens": out["prompt_tokens"] + out["completion_tokens"],
            },
        }

    return app


def serve(serving_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the server under uvicorn, with tdm's connection limits, until interrupted."""
    import uvicorn

    from tdm_dagster.http.limits import uvicorn_settings

    uvicorn.run(create_app(serving_dir), host=host, port=port, log_level="info", **uvicorn_settings())
