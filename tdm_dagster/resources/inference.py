from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Optional

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from tdm_dagster.generate.inference_client import InferenceClient


class InferenceServerResource(dg.ConfigurableResource):
    """The OpenAI-compatible inference server (the "3090").

    Set ``api_key`` with ``dg.EnvVar("TDM_INFERENCE_API_KEY")`` so the key is read from
    the environment at run time and never stored in config, logs or metadata.
    """

    base_url: str = "http://127.0.0.1:8765"
    api_key: Optional[str] = Field(default=None, description="Bearer token; pass a dg.EnvVar")
    model: str = "default"
    timeout_sec: float = 60.0
    max_concurrency: int = 4
    max_attempts: int = 4

    @contextmanager
    def client(self, *, quick: bool = False) -> Iterator["InferenceClient"]:
        """A client; ``quick`` = one short try, for status displays that must not hang."""
        from tdm_dagster.http.retry import (
            RetryPolicy,  # httpx loads here, not at code-location load
        )
        from tdm_dagster.generate.inference_client import InferenceClient

        retry = RetryPolicy(max_attempts=1) if quick else RetryPolicy(max_attempts=self.max_attempts)
        with InferenceClient(
            self.base_url,
            api_key=self.api_key,
            model=self.model,
            timeout_s=2.0 if quick else self.timeout_sec,
            retry=retry,
            max_concurrency=self.max_concurrency,
        ) as client:
            yield client
