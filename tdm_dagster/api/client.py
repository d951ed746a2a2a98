"""What ``tdm validate`` uses to have a running ``tdm api`` check a file with its warm gate.

Only the standard library's ``http.client`` (which :mod:`tdm_dagster.api.local` loads
anyway to probe the service) and the ``api:`` section's type are imported here: httpx
and httpcore cost ~0.2 s of CPU to import, a third of a warm ``tdm validate``, for one
POST. ``validate_remote`` uploads the file (under the path as the user typed it, so the
report names it the same), its answers and evaluation files as ``multipart/form-data``,
streamed from disk, and returns the service's report, the one in-process validation
gives. It raises ``ServiceUnavailable`` when the service cannot do it (not reachable,
silent past ``api.client_read_timeout_sec``, the file over its upload limit, a server
error): the CLI then validates in-process and says so in one line.
A refused key or a bad ``--spec``/``--answers`` is the user's to fix, not a reason to
fall back: those raise ``ServiceRefused`` / ``ServiceParamError``.
"""

from __future__ import annotations

import http.client
import json
import os
import uuid
from contextlib import ExitStack
from typing import IO, Any
from urllib.parse import urlsplit

from tdm_dagster.config.sections import ApiConfig

CHUNK_BYTES = 1 << 16
"""How much of a file is sent at a time."""


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
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ServiceUnavailable(f"{path} is not a readable file here")  # in-process says what is wrong with it
    fields = {name: value for name, value in (("spec", spec), ("level", level)) if value}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with ExitStack() as stack:
        files = [("file", path, stack.enter_context(open(path, "rb")))]
        if answers:
            files.append(("answers", answers, stack.enter_context(open(answers, "rb"))))
        files += [("against", name, stack.enter_context(open(name, "rb"))) for name in against]
        status, body = _post(f"{url.rstrip('/')}/v1/validate", fields, files, headers, settings)
    if status == 200:
        return json.loads(body)
    detail = _detail(body)
    if status in (401, 403):
        raise ServiceRefused(f"{detail} (key from TDM_API_KEY)")
    if status == 422 and isinstance(detail, dict) and "param" in detail:
        raise ServiceParamError(detail["param"], detail["message"])
    raise ServiceUnavailable(f"HTTP {status}: {detail}")


def _form_name(value: str) -> str:
    """A form parameter's value, quoted as browsers and httpx send it (HTML's multipart rules)."""
    escaped = value.replace("\\", "\\\\").replace('"', "%22")
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 and c != "\x1b" else c for c in escaped)


def _multipart(fields: dict[str, str], files: list[tuple[str, str, IO[bytes]]], boundary: str) -> list[bytes | IO[bytes]]:
    """The body's pieces in order: bytes, and open files to stream."""
    pieces: list[bytes | IO[bytes]] = []
    for name, value in fields.items():
        pieces.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, handle in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{_form_name(filename)}"\r\n'
        pieces += [(head + "Content-Type: application/octet-stream\r\n\r\n").encode(), handle, b"\r\n"]
    pieces.append(f"--{boundary}--\r\n".encode())
    return pieces


def _post(url: str, fields: dict[str, str], files: list[tuple[str, str, IO[bytes]]], headers: dict[str, str], settings: ApiConfig) -> tuple[int, bytes]:
    """POST the form to ``url``; its status and body. Errors are named as httpx names them."""
    connect_s, read_s = settings.client_connect_timeout_sec, settings.client_read_timeout_sec
    where = urlsplit(url)
    if where.scheme == "https":
        import ssl

        connection: http.client.HTTPConnection = http.client.HTTPSConnection(where.hostname, where.port, timeout=connect_s, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=connect_s)
    try:
        try:
            connection.connect()
        except TimeoutError as error:
            raise ServiceUnavailable(f"ConnectTimeout: no connection within {connect_s:g} s, api.client_connect_timeout_sec") from error
        except OSError as error:
            raise ServiceUnavailable(f"ConnectError: {error}") from error
        connection.sock.settimeout(read_s)  # from here on: the longest silence, each way
        boundary = uuid.uuid4().hex
        pieces = _multipart(fields, files, boundary)
        length = sum(len(p) if isinstance(p, bytes) else os.fstat(p.fileno()).st_size for p in pieces)
        try:
            connection.putrequest("POST", where.path or "/", skip_accept_encoding=True)
            for name, value in {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(length)}.items():
                connection.putheader(name, value)
            connection.endheaders()
            for piece in pieces:
                if isinstance(piece, bytes):
                    connection.send(piece)
                else:
                    while chunk := piece.read(CHUNK_BYTES):
                        connection.send(chunk)
        except TimeoutError as error:
            raise ServiceUnavailable(f"WriteTimeout: silent for {read_s:g} s, api.client_read_timeout_sec") from error
        except OSError:  # the service answered before taking it all (a refusal, the upload limit): read that
            pass
        try:
            response = connection.getresponse()
            return response.status, response.read()
        except TimeoutError as error:
            raise ServiceUnavailable(f"ReadTimeout: silent for {read_s:g} s, api.client_read_timeout_sec") from error
        except (OSError, http.client.HTTPException) as error:
            raise ServiceUnavailable(f"{type(error).__name__}: {error}") from error
    finally:
        connection.close()


def _detail(body: bytes) -> Any:
    text = body.decode(errors="replace")
    try:
        return json.loads(text).get("detail", text[:200])
    except (ValueError, AttributeError):
        return text[:200]
