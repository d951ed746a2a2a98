"""An OpenAI-compatible server for the checkpoint deployed in a serving folder.

``serving_dir`` layout (written by :mod:`tdm_dagster.serving.deploy`)::

    serving_dir/
      current            one line: the name of the deployed subfolder (written atomically)
      <name>/            a Hugging Face checkpoint (config.json, weights, tokenizer files)
      deployments.json   the deployment record

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /admin/reload`` (needs ``Authorization: Bearer $TDM_SERVING_ADMIN_TOKEN``).

Generation runs in a worker thread, one request at a time (``GENERATION_CONCURRENCY``),
with at most ``MAX_PENDING_GENERATIONS`` requests running or waiting; the event loop stays
free, so ``/health`` answers at once however many requests are generating.

Reload: every request reads the ``current`` pointer; when it names another folder than
the loaded one, the new model is loaded (and warmed up with a one-token generation)
outside any lock that requests take, then swapped in under a short lock. A request holds
a reference to the model it started with, so requests in flight finish on the old model
and none fail. If the new checkpoint fails to load, the old one keeps serving and the
error is reported in ``/health`` (``last_error``); the same broken pointer is not retried
on every request, only when the pointer file changes again or on ``POST /admin/reload``.
"""

from __future__ import annotations

import hmac
import os
import resource
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from tdm_dagster.serving import ADMIN_TOKEN_ENV, POINTER_FILE

# Request limits: anything beyond these is refused with a 4xx and a clear message.
MAX_BODY_BYTES = 256 * 1024
MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 32_000
MAX_TOKENS_LIMIT = 512
DEFAULT_MAX_TOKENS = 64
MAX_PROMPT_TOKENS = 4096
GREEDY_BELOW_TEMPERATURE = 1e-2
"""A temperature below this decodes greedily, as 0 does: dividing logits by a tiny
temperature overflows to inf (1e-300 made the sampler fail), and the distribution it
would sample from is already all but one-hot."""
GENERATION_CONCURRENCY = 1
MAX_PENDING_GENERATIONS = 256
"""Completion requests beyond this many running or waiting for the model get 503 at once."""

DEFAULT_TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "gate" / "quality" / "default_tokenizer"


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


def read_pointer(serving_dir: str | os.PathLike[str]) -> tuple[str | None, int | None]:
    """The deployed subfolder name in ``serving_dir/current`` and the file's mtime_ns."""
    path = Path(serving_dir) / POINTER_FILE
    try:
        stat = path.stat()
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, None
    return (name or None), stat.st_mtime_ns


def process_memory() -> dict[str, Any]:
    """Process RSS in MB and, on CUDA, GPU memory used/total in MB."""
    rss_mb: float | None = None
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        rss_mb = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    memory: dict[str, Any] = {"rss_mb": round(rss_mb, 1)}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        memory["gpu_used_mb"] = round((total - free) / 2**20, 1)
        memory["gpu_total_mb"] = round(total / 2**20, 1)
    return memory


@dataclass
class LoadedModel:
    name: str
    path: Path
    model: Any
    tokenizer: Any
    device: str
    max_positions: int
    loaded_at: float
    eos_ids: list[int]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def generate(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                 top_p: float = 1.0) -> dict[str, Any]:
        import torch

        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        encoded = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        input_ids = encoded["input_ids"].to(self.device)
        prompt_tokens = int(input_ids.shape[1])
        if prompt_tokens > MAX_PROMPT_TOKENS or prompt_tokens + max_tokens > self.max_positions:
            raise PromptTooLong(prompt_tokens, max_tokens, min(MAX_PROMPT_TOKENS, self.max_positions))
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
            else self.eos_ids[0] if self.eos_ids else 0,
        }
        if self.eos_ids:
            kwargs["eos_token_id"] = self.eos_ids
        if temperature >= GREEDY_BELOW_TEMPERATURE:
            kwargs.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self.lock, torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=encoded["attention_mask"].to(self.device),
                **kwargs,
            )
        new_ids = output[0, prompt_tokens:].tolist()
        finish_reason = "length"
        if new_ids and new_ids[-1] in self.eos_ids:
            new_ids = new_ids[:-1]
            finish_reason = "stop"
        content = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        completion_tokens = len(output[0]) - prompt_tokens
        return {
            "content": content,
            "finish_reason": finish_reason,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": int(completion_tokens),
        }


class PromptTooLong(ValueError):
    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int) -> None:
        self.prompt_tokens, self.max_tokens, self.limit = prompt_tokens, max_tokens, limit
        super().__init__(
            f"prompt is {prompt_tokens} tokens; with max_tokens={max_tokens} it exceeds "
            f"this model's limit of {limit} tokens"
        )


def load_checkpoint(path: str | os.PathLike[str], name: str | None = None) -> LoadedModel:
    """Load a checkpoint folder and warm it up with a one-token generation.

    Raises on any problem (missing/corrupt config or weights, a model that cannot
    generate), so a broken checkpoint never replaces a working one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json")
    tokenizer_dir = folder if (folder / "tokenizer_config.json").is_file() else DEFAULT_TOKENIZER_DIR
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto" if device == "cuda" else torch.float32)
    model.to(device)
    model.eval()
    eos_ids: list[int] = []
    for token in ("<|im_end|>",):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            eos_ids.append(token_id)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    max_positions = int(getattr(model.config, "max_position_embeddings", None) or MAX_PROMPT_TOKENS + MAX_TOKENS_LIMIT)
    loaded = LoadedModel(
        name=name or folder.name,
        path=folder.resolve(),
        model=model,
        tokenizer=tokenizer,
        device=device,
        max_positions=max_positions,
        loaded_at=time.time(),
        eos_ids=eos_ids,
    )
    loaded.generate([{"role": "user", "content": "ping"}], max_tokens=1, temperature=0.0)
    return loaded


class ModelManager:
    """Holds the served model; loads and swaps it when the pointer changes."""

    def __init__(self, serving_dir: str | os.PathLike[str]) -> None:
        self.serving_dir = Path(serving_dir)
        self._current: LoadedModel | None = None
        self._swap_lock = threading.Lock()  # held only for the pointer swap
        self._reload_lock = threading.Lock()  # one load at a time
        self._failed: tuple[str | None, int | None] | None = None
        self.last_error: dict[str, Any] | None = None
        self.reloads = 0

    @property
    def current(self) -> LoadedModel | None:
        with self._swap_lock:
            return self._current

    def _needs_load(self, name: str | None, mtime: int | None, force: bool) -> bool:
        if name is None:
            return False
        current = self.current
        if current is not None and current.name == name:
            return False
        return not (not force and self._failed == (name, mtime))

    def pointer_moved(self) -> bool:
        """Whether the pointer names a checkpoint to load (a file read: cheap enough for the event loop)."""
        return self._needs_load(*read_pointer(self.serving_dir), force=False)

    def maybe_reload(self, *, force: bool = False, wait: bool = False) -> dict[str, Any]:
        """Load the checkpoint the pointer names if it is not the one loaded.

        ``wait=False`` (the per-request check): if another thread is already loading,
        return at once and keep serving the current model.
        """
        name, mtime = read_pointer(self.serving_dir)
        if not self._needs_load(name, mtime, force):
            return self._result(name, changed=False)
        if not self._reload_lock.acquire(blocking=wait):
            return self._result(name, changed=False)
        try:
            name, mtime = read_pointer(self.serving_dir)  # may have moved while we waited
            if not self._needs_load(name, mtime, force):
                return self._result(name, changed=False)
            assert name is not None
            started = time.monotonic()
            try:
                if "/" in name or name in {"", ".", ".."}:
                    raise ValueError(f"pointer names an invalid folder {name!r}")
                loaded = load_checkpoint(self.serving_dir / name, name)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the old model
                self._failed = (name, mtime)
                self.last_error = {
                    "checkpoint": name,
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "time": time.time(),
                }
                return self._result(name, changed=False)
            with self._swap_lock:
                self._current = loaded
            self._failed = None
            self.last_error = None
            self.reloads += 1
            result = self._result(name, changed=True)
            result["load_s"] = round(time.monotonic() - started, 3)
            return result
        finally:
            self._reload_lock.release()

    def _result(self, pointer: str | None, *, changed: bool) -> dict[str, Any]:
        current = self.current
        return {
            "pointer": pointer,
            "checkpoint": current.name if current else None,
            "loaded": current is not None and current.name == pointer,
            "changed": changed,
            "error": self.last_error,
        }


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                           "param": param, "code": code}},
    )


class ServerBusy(RuntimeError):
    """Too many completion requests are already waiting for the model."""


class GenerationQueue:
    """Runs generations in worker threads, ``concurrency`` at a time, off the event loop.

    Requests over ``max_pending`` (running plus waiting) are refused at once with
    ``ServerBusy`` instead of piling up. Waiting requests wait on the event loop, not in
    threads, so the thread pool stays free for ``/health`` and the other endpoints.
    """

    def __init__(self, concurrency: int = GENERATION_CONCURRENCY, max_pending: int = MAX_PENDING_GENERATIONS) -> None:
        import anyio

        self._limiter = anyio.CapacityLimiter(concurrency)
        self.max_pending = max_pending
        self.pending = 0  # touched only on the event loop

    async def run(self, func: Any, *args: Any) -> Any:
        import anyio

        if self.pending >= self.max_pending:
            raise ServerBusy(f"server busy: {self.pending} completion requests are already waiting; retry later")
        self.pending += 1
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        finally:
            self.pending -= 1


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
    generation = GenerationQueue()
    app = FastAPI(title="tdm serving", docs_url=None, redoc_url=None)
    app.state.manager = manager
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
            out = await generation.run(current.generate, messages, max_tokens, request.temperature, request.top_p)
        except PromptTooLong as exc:
            return _error(400, str(exc), "messages", "context_length_exceeded")
        except ServerBusy as exc:
            return _error(503, str(exc), code="server_busy")
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
