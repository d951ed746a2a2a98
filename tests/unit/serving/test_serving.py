"""Serving and deployment: a real OpenAI-compatible server on 127.0.0.1 with tiny
random-weight Llama checkpoints, driven by the official ``openai`` client and httpx."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tdm_dagster.http.limits import uvicorn_settings
from tdm_dagster.serving import ADMIN_TOKEN_ENV, DEPLOYMENTS_FILE, POINTER_FILE
from tdm_dagster.serving.deploy import (
    current_deployment,
    deploy,
    load_deployments,
    remote_finish_command,
    remote_pointer_command,
    rollback,
    rsync_command,
    validate_checkpoint,
)
from tdm_dagster.serving.server import (
    MAX_BODY_BYTES,
    MAX_MESSAGES,
    MAX_TOKENS_LIMIT,
    create_app,
)
from tests.support.http_servers import LOOPBACK, running_server

TOKENIZER_DIR = Path(__file__).resolve().parents[3] / "tdm_dagster" / "gate" / "quality" / "default_tokenizer"


def _make_checkpoint(folder: Path, seed: int) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=1024,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


ADMIN_TOKEN = "test-admin-token-5b1e0c"


@pytest.fixture(autouse=True)
def admin_token(monkeypatch) -> str:
    """Servers and deploy() in these tests share the admin token, as they would in use."""
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    return ADMIN_TOKEN


def _admin(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    ckpt_a = _make_checkpoint(root / "ckpt-a", seed=1)
    ckpt_b = _make_checkpoint(root / "ckpt-b", seed=2)
    ckpt_c = _make_checkpoint(root / "ckpt-c", seed=3)
    corrupt = root / "ckpt-corrupt-weights"
    shutil.copytree(ckpt_a, corrupt)
    for weights in corrupt.glob("*.safetensors"):
        weights.write_bytes(b"this is not a safetensors file" * 10)
    return {"a": ckpt_a, "b": ckpt_b, "c": ckpt_c, "corrupt": corrupt}


@pytest.fixture
def serving(tmp_path, checkpoints) -> Path:
    """A serving folder with ckpt-a deployed (score 0.5)."""
    serving_dir = tmp_path / "serving"
    result = deploy(checkpoints["a"], serving_dir, score=0.5, server_url=None)
    assert result.deployed, result.reason
    return serving_dir


def _chat(base_url: str, content: str = "hi", **extra) -> httpx.Response:
    body = {"model": "any", "messages": [{"role": "user", "content": content}], "max_tokens": 4,
            "temperature": 0, **extra}
    return httpx.post(base_url + "/v1/chat/completions", json=body, timeout=30)


def test_openai_client_chat_completion_and_models(serving):
    from openai import OpenAI

    with running_server(create_app(serving)) as base_url:
        client = OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0)
        models = client.models.list()
        assert [m.id for m in models.data] == ["ckpt-a"]

        completion = client.chat.completions.create(
            model="ckpt-a",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
            max_tokens=5,
            temperature=0,
        )
        assert completion.model == "ckpt-a"
        assert completion.choices[0].message.role == "assistant"
        assert isinstance(completion.choices[0].message.content, str)
        assert completion.choices[0].finish_reason in {"stop", "length"}
        assert completion.usage.prompt_tokens > 0
        assert 1 <= completion.usage.completion_tokens <= 5
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

        # greedy: temperature 0 is deterministic
        again = client.chat.completions.create(
            model="ckpt-a",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
            max_tokens=5, temperature=0,
        )
        assert again.choices[0].message.content == completion.choices[0].message.content

        sampled = client.chat.completions.create(
            model="ckpt-a", messages=[{"role": "user", "content": "Hello"}], max_tokens=3, temperature=0.8,
        )
        assert sampled.usage.completion_tokens >= 1

        health = httpx.get(base_url + "/health").json()
        assert health["status"] == "ok"
        assert health["model"] == "ckpt-a"
        assert health["checkpoint"].endswith("ckpt-a")
        assert health["device"] in {"cpu", "cuda"}
        assert health["memory"]["rss_mb"] > 0
        assert health["last_error"] is None


def test_malformed_and_oversized_requests_get_4xx(serving):
    with running_server(create_app(serving)) as base_url:
        url = base_url + "/v1/chat/completions"
        ok_message = [{"role": "user", "content": "hi"}]
        cases = {
            "not json": {"content": b"{nope", "headers": {"content-type": "application/json"}},
            "no messages": {"json": {"model": "m"}},
            "empty messages": {"json": {"messages": []}},
            "messages not a list": {"json": {"messages": "hi"}},
            "bad role": {"json": {"messages": [{"role": "wizard", "content": "hi"}]}},
            "content not a string": {"json": {"messages": [{"role": "user", "content": 5}]}},
            "max_tokens a string": {"json": {"messages": ok_message, "max_tokens": "10"}},
            "max_tokens too big": {"json": {"messages": ok_message, "max_tokens": MAX_TOKENS_LIMIT + 1}},
            "max_tokens zero": {"json": {"messages": ok_message, "max_tokens": 0}},
            "temperature a string": {"json": {"messages": ok_message, "temperature": "hot"}},
            "negative temperature": {"json": {"messages": ok_message, "temperature": -1}},
            "too many messages": {"json": {"messages": ok_message * (MAX_MESSAGES + 1)}},
            "stream": {"json": {"messages": ok_message, "stream": True}},
        }
        for label, kwargs in cases.items():
            response = httpx.post(url, timeout=30, **kwargs)
            assert response.status_code == 400, (label, response.status_code, response.text)
            assert response.json()["error"]["message"], label

        too_big = httpx.post(url, json={"messages": [{"role": "user", "content": "x" * (MAX_BODY_BYTES + 10)}]},
                             timeout=30)
        assert too_big.status_code == 413
        assert "limit" in too_big.json()["error"]["message"]

        def chunked():  # no Content-Length: the server counts the bytes itself
            yield b'{"messages": [{"role": "user", "content": "'
            for _ in range(MAX_BODY_BYTES // 1000 + 2):
                yield b"y" * 1000
            yield b'"}]}'

        streamed = httpx.post(url, content=chunked(), headers={"content-type": "application/json"}, timeout=30)
        assert streamed.status_code == 413

        # a valid request still works after all that
        assert _chat(base_url).status_code == 200


def test_deploy_under_load_zero_failures_then_new_checkpoint(serving, checkpoints):
    with running_server(create_app(serving)) as base_url:
        results: list[tuple[float, int, str | None]] = []
        stop = threading.Event()

        def load():
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    try:
                        r = client.post(base_url + "/v1/chat/completions",
                                        json={"messages": [{"role": "user", "content": "go"}],
                                              "max_tokens": 3, "temperature": 0})
                        results.append((time.monotonic(), r.status_code, r.json().get("model")))
                    except httpx.HTTPError as exc:
                        results.append((time.monotonic(), -1, repr(exc)))
                    time.sleep(0.02)

        workers = [threading.Thread(target=load) for _ in range(2)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)
            result = deploy(checkpoints["b"], serving, score=0.7, server_url=base_url)
            deployed_at = time.monotonic()
            time.sleep(0.5)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)

        assert result.deployed, result.reason
        assert result.previous == "ckpt-a"
        assert result.name == "ckpt-b"
        assert result.latency_s > 0
        failures = [r for r in results if r[1] != 200]
        assert failures == []
        before = [r for r in results if r[0] < deployed_at - result.latency_s]
        after = [r for r in results if r[0] > deployed_at]
        assert before and all(r[2] == "ckpt-a" for r in before)
        assert after and all(r[2] == "ckpt-b" for r in after)
        assert current_deployment(serving) == "ckpt-b"
        assert httpx.get(base_url + "/health").json()["model"] == "ckpt-b"

    record = load_deployments(serving)
    assert record["active"] == ["ckpt-a", "ckpt-b"]
    last = record["history"][-1]
    assert last["outcome"] == "deployed" and last["name"] == "ckpt-b" and last["score"] == 0.7
    assert last["latency_s"] == result.latency_s and last["time"]
    assert last["checkpoint"] == str(checkpoints["b"].resolve())


def test_broken_checkpoint_refused_previous_keeps_serving(serving, checkpoints, tmp_path):
    with running_server(create_app(serving)) as base_url:
        result = deploy(checkpoints["corrupt"], serving, score=0.9, server_url=base_url)
        assert not result.deployed
        assert "ckpt-corrupt-weights" in result.reason and "switched back to ckpt-a" in result.reason
        assert current_deployment(serving) == "ckpt-a"
        assert not (serving / "ckpt-corrupt-weights").exists()
        assert _chat(base_url).json()["model"] == "ckpt-a"
        assert load_deployments(serving)["history"][-1]["outcome"] == "failed"

        # a folder with a corrupt config / no weights is refused before anything is touched
        bad_config = tmp_path / "bad-config"
        shutil.copytree(checkpoints["a"], bad_config)
        (bad_config / "config.json").write_text("{not json")
        no_weights = tmp_path / "no-weights"
        shutil.copytree(checkpoints["a"], no_weights)
        for weights in no_weights.glob("*.safetensors"):
            weights.unlink()
        for folder, words in ((bad_config, "not valid JSON"), (no_weights, "no weights")):
            refused = deploy(folder, serving, score=0.9, server_url=base_url)
            assert not refused.deployed and words in refused.reason
            assert current_deployment(serving) == "ckpt-a"

        # someone points `current` at a broken folder by hand: the server keeps the old
        # model and reports the error in /health
        shutil.copytree(checkpoints["corrupt"], serving / "broken")
        (serving / POINTER_FILE).write_text("broken\n")
        response = _chat(base_url)
        assert response.status_code == 200 and response.json()["model"] == "ckpt-a"
        health = httpx.get(base_url + "/health").json()
        assert health["model"] == "ckpt-a"
        assert health["last_error"]["checkpoint"] == "broken"
        assert health["last_error"]["error"]
        assert httpx.post(base_url + "/admin/reload", headers=_admin()).status_code == 409


def test_worse_score_refused_unless_forced_and_rollback(serving, checkpoints):
    worse = deploy(checkpoints["b"], serving, score=0.4, server_url=None)
    assert not worse.deployed and "lower" in worse.reason
    assert current_deployment(serving) == "ckpt-a"
    assert load_deployments(serving)["history"][-1]["outcome"] == "refused"

    unscored = deploy(checkpoints["b"], serving, score=None, server_url=None)
    assert not unscored.deployed

    with running_server(create_app(serving)) as base_url:
        forced = deploy(checkpoints["b"], serving, score=0.4, server_url=base_url, force=True)
        assert forced.deployed, forced.reason
        assert _chat(base_url).json()["model"] == "ckpt-b"

        # without server_url the server notices the pointer change on its next request
        back = rollback(serving)
        assert back.deployed, back.reason
        assert back.name == "ckpt-a" and back.previous == "ckpt-b"
        assert current_deployment(serving) == "ckpt-a"
        assert _chat(base_url).json()["model"] == "ckpt-a"

        # nothing before ckpt-a
        nothing = rollback(serving, server_url=base_url)
        assert not nothing.deployed and "no previous" in nothing.reason

    record = json.loads((serving / DEPLOYMENTS_FILE).read_text())
    outcomes = [entry["outcome"] for entry in record["history"]]
    assert outcomes == ["deployed", "refused", "refused", "deployed", "rollback", "refused"]
    assert all("latency_s" in entry for entry in record["history"])


def test_validate_checkpoint(checkpoints, tmp_path):
    assert validate_checkpoint(checkpoints["a"]) is None
    assert "no config.json" in validate_checkpoint(tmp_path)
    assert "not a folder" in validate_checkpoint(tmp_path / "missing")


def test_remote_command_lines():
    assert rsync_command("/data/ckpt-b/", "gpu-box", "/srv/serving/.ckpt-b.tmp-1") == [
        "rsync", "-a", "--delete", "--mkpath", "/data/ckpt-b/", "gpu-box:/srv/serving/.ckpt-b.tmp-1/",
    ]
    assert rsync_command("/data/my ckpt", "me@gpu-box", "/srv/my serving/x")[-1] == \
        "me@gpu-box:'/srv/my serving/x'/"
    finish = remote_finish_command("gpu-box", "/srv/serving/", ".ckpt-b.tmp-1", "ckpt-b")
    assert finish == ["ssh", "-o", "BatchMode=yes", "gpu-box",
                      "test ! -e /srv/serving/ckpt-b && mv /srv/serving/.ckpt-b.tmp-1 /srv/serving/ckpt-b"]
    pointer = remote_pointer_command("gpu-box", "/srv/serving", "ckpt-b")
    assert pointer[:4] == ["ssh", "-o", "BatchMode=yes", "gpu-box"]
    assert pointer[4] == ("printf '%s\\n' ckpt-b > /srv/serving/.current.tmp && sync && "
                          "mv -f /srv/serving/.current.tmp /srv/serving/current")


def test_no_model_deployed(tmp_path):
    with running_server(create_app(tmp_path / "empty")) as base_url:
        assert httpx.get(base_url + "/health").status_code == 503
        assert _chat(base_url).status_code == 503
        assert httpx.get(base_url + "/v1/models").json()["data"] == []


# --- hostile clients: sampling parameters, load, slow connections, admin token ---------


def test_sampling_parameter_table_gets_200_or_400_never_500(serving):
    ok_message = [{"role": "user", "content": "hi"}]
    accepted = {  # tiny temperatures decode greedily, like 0
        "temperature 1e-300": {"temperature": 1e-300},
        "temperature 5e-324 (smallest float)": {"temperature": 5e-324},
        "temperature 0": {"temperature": 0},
        "temperature -0.0": {"temperature": -0.0},
        "temperature 0.009": {"temperature": 0.009},
        "temperature 2": {"temperature": 2, "top_p": 1e-300},
        "top_p 1e-300": {"temperature": 0.7, "top_p": 1e-300},
        "max_tokens 1": {"temperature": 1e-300, "max_tokens": 1},
    }
    refused = {  # raw JSON bodies: NaN, Infinity and huge numbers are what a client can send
        "temperature NaN": ('"temperature": NaN', "temperature"),
        "temperature Infinity": ('"temperature": Infinity', "temperature"),
        "temperature -Infinity": ('"temperature": -Infinity', "temperature"),
        "temperature negative": ('"temperature": -1e-300', "temperature"),
        "temperature 1e308": ('"temperature": 1e308', "temperature"),
        "temperature 1e999 (overflows to inf)": ('"temperature": 1e999', "temperature"),
        "temperature 400 digits": ('"temperature": ' + "9" * 400, "temperature"),
        "temperature a string": ('"temperature": "0.5"', "temperature"),
        "temperature true": ('"temperature": true', "temperature"),
        "top_p 0": ('"top_p": 0', "top_p"),
        "top_p negative": ('"top_p": -0.5', "top_p"),
        "top_p 1.5": ('"top_p": 1.5', "top_p"),
        "top_p NaN": ('"top_p": NaN', "top_p"),
        "max_tokens huge": ('"max_tokens": ' + "9" * 30, "max_tokens"),
        "max_tokens negative": ('"max_tokens": -5', "max_tokens"),
        "max_tokens float": ('"max_tokens": 5.5', "max_tokens"),
        "max_tokens 5000 digits": ('"max_tokens": ' + "9" * 5000, "body"),
        "max_completion_tokens huge": ('"max_completion_tokens": 1e300', "max_completion_tokens"),
    }
    with running_server(create_app(serving)) as base_url:
        url = base_url + "/v1/chat/completions"
        greedy = _chat(base_url, max_tokens=6, temperature=0).json()["choices"][0]["message"]["content"]
        for label, extra in accepted.items():
            response = httpx.post(url, json={"messages": ok_message, "max_tokens": 6, **extra}, timeout=30)
            assert response.status_code == 200, (label, response.text)
            if extra.get("temperature", 1) < 0.01 and extra.get("max_tokens", 6) == 6:
                assert response.json()["choices"][0]["message"]["content"] == greedy, label
        for label, (field, param) in refused.items():
            body = '{"messages": [{"role": "user", "content": "hi"}], ' + field + "}"
            response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
            assert response.status_code == 400, (label, response.status_code, response.text[:500])
            error = response.json().get("error")
            assert error and param in error["message"], (label, response.text[:500])
            assert len(response.text) < 2000, label  # the huge number is not echoed back
        assert _chat(base_url).status_code == 200


def test_health_answers_within_a_second_while_60_requests_generate(serving):
    """Generation runs off the event loop and waits for the model outside the thread
    pool, so /health stays prompt however many completions are queued. The clients are
    coroutines in one thread, so they add no threads to compete with the server's."""

    async def load_and_poll(base_url: str) -> tuple[list[int], list[float], int]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=100)) as client:

            async def complete(n: int) -> int:
                body = {"messages": [{"role": "user", "content": f"count to {n}"}], "max_tokens": 48,
                        "temperature": 0.9}
                return (await client.post(base_url + "/v1/chat/completions", json=body)).status_code

            completions = [asyncio.create_task(complete(n)) for n in range(60)]
            latencies: list[float] = []
            polls_while_busy = 0
            while not all(task.done() for task in completions):
                started = time.monotonic()
                response = await client.get(base_url + "/health")
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
                polls_while_busy += sum(not task.done() for task in completions) >= 30
                await asyncio.sleep(0.05)
            return [task.result() for task in completions], latencies, polls_while_busy

    with running_server(create_app(serving)) as base_url:
        statuses, latencies, polls_while_busy = asyncio.run(load_and_poll(base_url))

    assert statuses == [200] * 60
    assert polls_while_busy >= 5, f"only {polls_while_busy} health polls while 30+ requests were pending"
    assert max(latencies) < 1.0, f"slowest /health took {max(latencies):.2f} s while generating"


def _slow_client(port: int, chunks: list[bytes], limit_s: float) -> tuple[bytes, float]:
    """Connect, send ``chunks`` slowly (stopping if the server hangs up), then read until
    the server closes the connection: what it sent, and seconds from connect to close."""
    with socket.create_connection((LOOPBACK, port)) as sock:
        started = time.monotonic()
        sock.settimeout(limit_s)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                time.sleep(0.15)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received, time.monotonic() - started


def test_idle_and_half_sent_connections_are_closed(serving):
    request_timeout = 1.0
    settings = {**uvicorn_settings(request_timeout_s=request_timeout), "timeout_keep_alive": 1}
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
    clients = {
        "connects and sends nothing": [],
        "half the request line": [b"POST /v1/chat/comp"],
        "half the headers": [head],
        "headers, then half the body": [head + b"content-length: 100\r\n\r\n" + b'{"messages": ['],
        "headers one byte at a time (slowloris)": [bytes([b]) for b in head[:12]],
        "one complete request, then idle": [b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"],
    }
    with running_server(create_app(serving), **settings) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for label, chunks in clients.items():
            received, closed_after = _slow_client(port, chunks, limit_s=10)
            assert closed_after < request_timeout + 1.5, (label, closed_after)
            if label.startswith("one complete"):
                assert received.startswith(b"HTTP/1.1 200"), (label, received[:200])
            else:
                assert received.startswith(b"HTTP/1.1 408"), (label, received[:200])
        assert _chat(base_url).status_code == 200  # the server is none the worse


def test_admin_reload_needs_the_token_from_the_environment(serving, checkpoints, monkeypatch):
    monkeypatch.delenv(ADMIN_TOKEN_ENV)
    with running_server(create_app(serving)) as base_url:  # no token: admin endpoints are off
        for headers in ({}, _admin(), {"Authorization": "Bearer"}):
            response = httpx.post(base_url + "/admin/reload", headers=headers)
            assert response.status_code == 403
            assert ADMIN_TOKEN_ENV in response.json()["error"]["message"]

    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    with running_server(create_app(serving)) as base_url:
        monkeypatch.delenv(ADMIN_TOKEN_ENV)  # deploy() below runs without the token
        wrong = [{}, _admin("wrong"), _admin(ADMIN_TOKEN + "x"), _admin(ADMIN_TOKEN[:-1]),
                 {"Authorization": ADMIN_TOKEN}, {"Authorization": f"Basic {ADMIN_TOKEN}"}]
        for headers in wrong:
            response = httpx.post(base_url + "/admin/reload", headers=headers)
            assert response.status_code == 401, headers
            assert ADMIN_TOKEN not in response.text
        refused = deploy(checkpoints["b"], serving, score=0.9, server_url=base_url)
        assert not refused.deployed and "admin token" in refused.reason
        assert current_deployment(serving) == "ckpt-a"
        assert ADMIN_TOKEN not in json.dumps(load_deployments(serving))

        response = httpx.post(base_url + "/admin/reload", headers=_admin())
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
            assert httpx.post(base_url + "/admin/reload", headers=_admin("wrong-" + ADMIN_TOKEN)).status_code == 401
            assert httpx.post(base_url + "/admin/reload", headers=_admin()).status_code == 200
            assert _chat(base_url, temperature=1e-300).status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text()
    assert "POST /admin/reload" in text  # the access log is on ...
    assert ADMIN_TOKEN not in text  # ... and never shows the token


def test_generation_queue_runs_one_at_a_time_and_refuses_beyond_its_bound():
    from tdm_dagster.serving.server import GenerationQueue, ServerBusy

    running: list[int] = []
    overlaps: list[int] = []
    release = threading.Event()

    def work(n: int) -> int:
        running.append(n)
        overlaps.append(len(running))
        release.wait(10)
        running.remove(n)
        return n

    async def scenario() -> tuple[list[int], str]:
        queue = GenerationQueue(concurrency=1, max_pending=3)
        tasks = [asyncio.create_task(queue.run(work, n)) for n in range(3)]
        await asyncio.sleep(0.2)
        try:
            await queue.run(work, 99)
            refusal = ""
        except ServerBusy as exc:
            refusal = str(exc)
        release.set()
        return list(await asyncio.gather(*tasks)), refusal

    for _ in range(10):
        release.clear()
        overlaps.clear()
        results, refusal = asyncio.run(scenario())
        assert results == [0, 1, 2]
        assert "server busy: 3 completion requests are already waiting" in refusal
        assert max(overlaps) == 1
