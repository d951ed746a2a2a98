"""``/admin/reload`` and its token: refused without one, never echoed, never logged."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tdm_dagster.serving import ADMIN_TOKEN_ENV
from tdm_dagster.serving.deploy import current_deployment, deploy, load_deployments
from tdm_dagster.serving.server import create_app
from tests.support.http_servers import LOOPBACK, running_server
from tests.unit.serving.helpers import ADMIN_TOKEN, admin_auth, chat


def test_admin_reload_needs_the_token_from_the_environment(serving, checkpoints, monkeypatch):
    monkeypatch.delenv(ADMIN_TOKEN_ENV)
    with running_server(create_app(serving)) as base_url:  # no token: admin endpoints are off
        for headers in ({}, admin_auth(), {"Authorization": "Bearer"}):
            response = httpx.post(base_url + "/admin/reload", headers=headers)
            assert response.status_code == 403
            assert ADMIN_TOKEN_ENV in response.json()["error"]["message"]

    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    with running_server(create_app(serving)) as base_url:
        monkeypatch.delenv(ADMIN_TOKEN_ENV)  # deploy() below runs without the token
        wrong = [{}, admin_auth("wrong"), admin_auth(ADMIN_TOKEN + "x"), admin_auth(ADMIN_TOKEN[:-1]),
                 {"Authorization": ADMIN_TOKEN}, {"Authorization": f"Basic {ADMIN_TOKEN}"}]
        for headers in wrong:
            response = httpx.post(base_url + "/admin/reload", headers=headers)
            assert response.status_code == 401, headers
            assert ADMIN_TOKEN not in response.text
        refused = deploy(checkpoints["b"], serving, score=0.9, server_url=base_url)
        assert not refused.deployed and "admin token" in refused.reason
        assert current_deployment(serving) == "ckpt-a"
        assert ADMIN_TOKEN not in json.dumps(load_deployments(serving))

        response = httpx.post(base_url + "/admin/reload", headers=admin_auth())
        assert response.status_code == 200 and response.json()["checkpoint"] == "ckpt-a"
        monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
        assert deploy(checkpoints["b"], serving, score=0.9, server_url=base_url).deployed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def test_tdm_serve_process_keeps_the_token_out_of_its_log(serving, tmp_path):
    port = _free_port()
    env = {**os.environ, ADMIN_TOKEN_ENV: ADMIN_TOKEN, "TDM_HOME": str(tmp_path / "home")}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tdm"), "serve", "--dir", str(serving), "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://{LOOPBACK}:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.25)
            assert httpx.post(base_url + "/admin/reload", headers=admin_auth("wrong-" + ADMIN_TOKEN)).status_code == 401
            assert httpx.post(base_url + "/admin/reload", headers=admin_auth()).status_code == 200
            assert chat(base_url, temperature=1e-300).status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text()
    assert "POST /admin/reload" in text  # the access log is on ...
    assert ADMIN_TOKEN not in text  # ... and never shows the token
