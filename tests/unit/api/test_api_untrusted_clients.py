"""A real ``tdm api`` process against clients that mean harm or go wrong: a pickle that
would run code, uploads without a key (refused before a body byte is read), big chunked
uploads beside ``/healthz``, uploads over the limit or cut off (audited under their key),
a corrupt key store, and errors that must not show the server's paths."""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tdm_dagster.api.audit import read_entries
from tests.support.api_server import api_process

LIMIT = 64 * 1024 * 1024
BOUNDARY = "tdmtestboundary7f3a"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-untrusted")
    with api_process(folder, warm=True, max_upload_bytes=LIMIT) as running:  # warm: the temp folder and CPU are the test's
        yield running


class MakesFolder:
    """Unpickling this makes the folder ``path``: proof that the upload's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def import_upload(api, name, filename, content, scope="write", **form):
    return httpx.post(f"{api.url}/v1/datasets/{name}/import", files={"file": (filename, content)},
                      data=form, headers=api.auth(scope), timeout=60)  # fmt: skip


def dataset_names(api) -> list[str]:
    return [d["name"] for d in httpx.get(api.url + "/v1/datasets", headers=api.auth("read")).json()]


def multipart_head(filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip


def multipart_tail() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def raw_request(api, path: str, headers: dict[str, str], content_length: int) -> socket.socket:
    """A connection that has sent a POST's headers (and nothing of its body)."""
    netloc = urlsplit(api.url)
    sock = socket.create_connection((netloc.hostname, netloc.port), timeout=10)
    lines = [f"POST {path} HTTP/1.1", f"Host: {netloc.netloc}", f"Content-Length: {content_length}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_response_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_pickle_is_never_unpickled_whatever_the_key_and_form_say(api, tmp_path):
    marker = tmp_path / "the-pickle-ran"
    evil = pickle.dumps([MakesFolder(marker)])
    attempts = [
        ("evil.pkl", {"allow_pickle": "true"}, "write"),
        ("evil.pkl", {"allow_pickle": "true", "format": "pickle", "gate": "false"}, "admin"),
        ("evil.jsonl", {"allow_pickle": "true", "format": "pickle"}, "write"),
        ("evil.pickle", {}, "write"),
    ]
    for filename, form, scope in attempts:
        refused = import_upload(api, "owned", filename, evil, scope=scope, **form)
        assert not marker.exists(), f"the upload's code ran ({filename}, {form}): {refused.text}"
        assert refused.status_code == 422, (filename, form, refused.text)
        detail = refused.json()["detail"]
        assert "pickle is never imported over the API" in detail and "--allow-pickle" in detail, detail
    as_data = import_upload(api, "owned", "evil.jsonl", evil, allow_pickle="true")  # read as JSON Lines: no record
    assert as_data.status_code == 422 and "no record could be read" in as_data.json()["detail"], as_data.text
    assert not marker.exists()
    assert "owned" not in dataset_names(api)  # no empty dataset left behind by a refused import


def test_openapi_and_form_say_pickle_is_refused(api):
    spec = httpx.get(api.url + "/openapi.json").json()
    assert "pickle" in spec["info"]["description"] and "never" in spec["info"]["description"]
    operation = spec["paths"]["/v1/datasets/{name}/import"]["post"]
    assert "pickle" in operation["description"]
    form_schema = json.dumps(spec["components"]["schemas"])
    assert "allow_pickle" not in form_schema


@pytest.mark.parametrize("scope,status", [(None, 401), ("bogus", 401), ("read", 403)])
def test_a_refused_upload_is_answered_before_its_body_is_read(api, scope, status):
    headers = {} if scope is None else {"Authorization": f"Bearer {api.keys.get(scope, 'tdm_bogus')}"}
    size = LIMIT - 1024
    started = time.monotonic()
    sock = raw_request(api, "/v1/datasets/sft/import", headers, size)
    sent = {"bytes": 0}

    def send_body():  # the whole body, as far as the server takes it: it should take next to nothing
        piece = b"x" * (1 << 20)
        try:
            sent["bytes"] += sock.send(multipart_head("big.jsonl"))
            while sent["bytes"] < size:
                sent["bytes"] += sock.send(piece[: size - sent["bytes"]])
        except OSError:  # the server closed the connection
            pass

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        head = read_response_head(sock)
        answered = time.monotonic() - started
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), head[:200]
        assert answered < 5, f"answered after {answered:.1f} s"
        assert api.temp_bytes_held() == 0  # nothing of the body spooled to disk
        sock.settimeout(10)
        try:
            while sock.recv(65536):  # the server closes the connection: nothing held after the answer
                pass
        except ConnectionResetError:  # closed with the client's unread bytes in its buffer
            pass
    finally:
        sock.close()
        sender.join(timeout=10)
    assert sent["bytes"] < 32 * 1024 * 1024  # socket buffers' worth of a 64 MB body, no more


def test_chunked_uploads_stream_beside_a_responsive_healthz(api):
    """Six 48 MB chunked uploads at once; /healthz answers all along, never held up for
    long (measured: 50 ms at most; 3.1 s when the body was buffered with ``bytes +=`` on
    the event loop). The upload is refused after it is read (no format in its name), so
    the time is the body's."""
    size, uploads = 48 * 1024 * 1024, 6
    piece = b"y" * 65536

    def body():
        yield multipart_head("big.bin")
        for _ in range(size // len(piece)):
            yield piece
        yield multipart_tail()

    statuses, seconds = [], []

    def upload():
        started = time.monotonic()
        answer = httpx.post(api.url + "/v1/datasets/big/import", content=body(), timeout=120,
                            headers={**api.auth("write"), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})  # fmt: skip
        seconds.append(time.monotonic() - started)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=upload) for _ in range(uploads)]
    latencies = []
    with httpx.Client(timeout=30) as client:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            started = time.monotonic()
            assert client.get(api.url + "/healthz").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
    for thread in threads:
        thread.join()
    print(f"\n{uploads} x {size >> 20} MB chunked uploads: {max(seconds):.2f} s the slowest; "
          f"/healthz {len(latencies)} answers during them, max {max(latencies) * 1000:.0f} ms, "
          f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms")  # fmt: skip
    assert statuses == [422] * uploads
    assert len(latencies) >= 3 and max(latencies) < 1.5, latencies


def test_refusals_over_the_limit_and_cut_off_uploads_are_audited_under_their_key(api):
    path = "/v1/datasets/audited/import"

    def audited() -> list[dict]:
        return [entry for entry in read_entries(api.home.api_audit_log) if entry["path"] == path]

    declared = raw_request(api, path, api.auth("write"), LIMIT + 1)
    try:
        assert read_response_head(declared).startswith(b"HTTP/1.1 413 ")
    finally:
        declared.close()

    def over_limit():
        yield multipart_head("over.jsonl")
        for _ in range(LIMIT // (1 << 20) + 2):
            yield b"z" * (1 << 20)

    chunked = httpx.post(api.url + path, content=over_limit(), timeout=60,
                         headers={**api.auth("write"), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})  # fmt: skip
    assert chunked.status_code == 413 and f"{LIMIT} bytes" in chunked.json()["detail"], chunked.text

    sock = raw_request(api, path, api.auth("write"), 1 << 20)
    sock.sendall(multipart_head("cut.jsonl") + b"{}\n" * 1000)
    sock.close()  # cut off: the body never completes
    deadline = time.monotonic() + 10
    while len(audited()) < 3 and time.monotonic() < deadline:  # a line is written once its answer is sent
        time.sleep(0.1)
    entries = audited()
    assert [(e["key"], e["scope"]) for e in entries] == [("write", "write")] * 3, entries
    assert sorted(e["status"] for e in entries) == [413, 413, 499]  # 499: the client closed the connection


def test_errors_never_show_server_paths(api):
    secret_places = (str(api.home.root), str(api.tmp), "tdm-api-upload")

    def shows_no_path(text: str) -> None:
        assert not any(place in text for place in secret_places), text

    corrupt = import_upload(api, "paths", "table.parquet", b"PAR1 this is not parquet")
    assert corrupt.status_code == 422 and "table.parquet" in corrupt.json()["detail"], corrupt.text
    shows_no_path(corrupt.text)
    junk = import_upload(api, "paths", "junk.jsonl", b"not json\n{also not\n")
    assert junk.status_code == 422 and "junk.jsonl line 1" in junk.json()["detail"] and "$TDM_HOME/rejected/" in junk.text, junk.text
    shows_no_path(junk.text)
    mixed = import_upload(api, "paths", "mixed.jsonl", b'{"prompt": "p", "completion": "c"}\nnot json\n', gate="false")
    assert mixed.status_code == 201 and mixed.json()["rejected"] == 1, mixed.text
    assert mixed.json()["rejected_file"].startswith("$TDM_HOME/rejected/") and "mixed.jsonl line 2" in mixed.text
    shows_no_path(mixed.text)
    answers = httpx.post(api.url + "/v1/validate", files={"file": ("a.jsonl", b'{"prompt": "p", "completion": "c"}\n'),
                                                         "answers": ("ans.jsonl", b"{nope\n")},
                         headers=api.auth("read"), timeout=120)  # fmt: skip
    assert answers.status_code == 422, answers.text
    shows_no_path(answers.text)


def test_a_corrupt_key_store_is_503_key_store_unreadable(api):
    keys_file = api.home.api_keys_file
    good = keys_file.read_bytes()
    try:
        for damage in (b"{not json", b'{"keys": [{"name": "x"}]}', b'["a list"]'):
            keys_file.write_bytes(damage)
            for method, path, scope in (("GET", "/v1/datasets", "read"), ("POST", "/v1/datasets/sft/import", "write"),
                                        ("GET", "/v1/keys", "admin")):  # fmt: skip
                answer = httpx.request(method, api.url + path, headers=api.auth(scope), files={"file": ("a.jsonl", b"{}\n")} if method == "POST" else None)
                assert answer.status_code == 503, (damage, path, answer.text)
                assert answer.json()["detail"].startswith("key store unreadable: keys.json"), answer.text
                assert str(api.home.root) not in answer.text
            ready = httpx.get(api.url + "/readyz")
            assert ready.status_code == 503 and any(p.startswith("keys: key store unreadable: keys.json") for p in ready.json()["not_ready"]), ready.text
            assert str(api.home.root) not in ready.text
    finally:
        keys_file.write_bytes(good)
    assert httpx.get(api.url + "/v1/datasets", headers=api.auth("read")).status_code == 200
