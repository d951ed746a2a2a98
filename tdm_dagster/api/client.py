"""What ``tdm validate`` uses to have a running ``tdm api`` check a file with its warm gate.

Only httpx (and the ``api:`` section's type) is imported here. ``validate_remote``
uploads the file (under the path as the user typed it, so the report names it the same),
its answers and evaluation files, and returns the service's report, the one in-process
validation gives. It raises ``ServiceUnavailable`` when the service cannot do it (not
reachable, silent past ``api.client_read_timeout_sec``, the file over its upload limit,
a server error): the CLI then validates in-process and says so in one line.
A refused key or a bad ``--spec``/``--answers`` is the user's to fix, not a reason to
fall back: those raise ``ServiceRefused`` / ``ServiceParamError``.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

import httpx

from tdm_dagster.config.sections import ApiConfig

class ServiceUnavailable(Exception):
    """The service cannot validate this file now; the message says why, in a few words."""


class ServiceRefused(Exception):
    """401/403: the key in ``TDM_API_KEY`` is missing, unknown, revoked or lacks ``read``."""


class ServiceParamError(Exception):
    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(message)


def validate_remote(
    url: str, key: str | None, path: str, *, spec: str | None = None, level: str | None = None,
    answers: str | None = None, against: tuple[str, ...] = (),
    settings: ApiConfig = ApiConfig(),
) -> dict[str, Any]:
    """The service's report on ``path`` (the options as ``tdm validate`` takes them).

    A service that does not accept the connection within ``settings.client_connect_timeout_sec``,
    or stays silent for ``settings.client_read_timeout_sec`` (taking the next part of the
    upload, sending the next part of its answer), cannot validate it: a stalled service
    costs at most about that long before the fallback."""
    connect_s, read_s = settings.client_connect_timeout_sec, settings.client_read_timeout_sec
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ServiceUnavailable(f"{path} is not a readable file here")  # in-process says what is wrong with it
    fields = {name: value for name, value in (("spec", spec), ("level", level)) if value}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(read_s, connect=connect_s, pool=connect_s)
    with ExitStack() as stack:
        files = [("file", (path, stack.enter_context(open(path, "rb"))))]
        if answers:
            files.append(("answers", (answers, stack.enter_context(open(answers, "rb")))))
        files += [("against", (name, stack.enter_context(open(name, "rb")))) for name in against]
        try:
            # verify=False on plain http (nothing to verify) spares building a TLS context: ~0.1 s of a 10-record call
            response = httpx.post(f"{url.rstrip('/')}/v1/validate", data=fields, files=files, headers=headers, timeout=timeout,
                                  verify=not url.startswith("http://"))  # fmt: skip
        except httpx.ConnectTimeout as error:
            raise ServiceUnavailable(f"ConnectTimeout: no connection within {connect_s:g} s, api.client_connect_timeout_sec") from error
        except httpx.TimeoutException as error:
            raise ServiceUnavailable(f"{type(error).__name__}: silent for {read_s:g} s, api.client_read_timeout_sec") from error
        except httpx.TransportError as error:
            raise ServiceUnavailable(f"{type(error).__name__}: {error}") from error
    if response.status_code == 200:
        return response.json()
    detail = _detail(response)
    if response.status_code in (401, 403):
        raise ServiceRefused(f"{detail} (key from TDM_API_KEY)")
    if response.status_code == 422 and isinstance(detail, dict) and "param" in detail:
        raise ServiceParamError(detail["param"], detail["message"])
    raise ServiceUnavailable(f"HTTP {response.status_code}: {detail}")


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text[:200])
    except ValueError:
        return response.text[:200]
