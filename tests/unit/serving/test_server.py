"""The OpenAI-compatible server on 127.0.0.1 with tiny random-weight Llama checkpoints,
driven by the official ``openai`` client and httpx: answers, request validation and
limits, sampling parameters, no model deployed."""

from __future__ import annotations

import httpx

from tdm_dagster.serving.server import (
    MAX_BODY_BYTES,
    MAX_MESSAGES,
    MAX_TOKENS_LIMIT,
    create_app,
)
from tests.support.http_servers import running_server
from tests.unit.serving.helpers import chat


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
        assert chat(base_url).status_code == 200


def test_no_model_deployed(tmp_path):
    with running_server(create_app(tmp_path / "empty")) as base_url:
        assert httpx.get(base_url + "/health").status_code == 503
        assert chat(base_url).status_code == 503
        assert httpx.get(base_url + "/v1/models").json()["data"] == []


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
        greedy = chat(base_url, max_tokens=6, temperature=0).json()["choices"][0]["message"]["content"]
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
        assert chat(base_url).status_code == 200
