"""Errors in OpenAI's shape and status, over plain HTTP: bad requests, keys, models, size, loading."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from g3chat.core.engine.base import ModelInfo
from g3chat.core.engine.fake import FakeEngine
from tests.server.conftest import API_KEY, MODEL, Served, serving

AUTH = {"Authorization": f"Bearer {API_KEY}"}
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def post(url: str, body: Any, headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    return httpx.post(f"{url}/chat/completions", json=body, headers=AUTH if headers is None else headers,
                      timeout=60, **extra)  # fmt: skip


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.model
def test_error_shapes(served: Served) -> None:
    url = served.url
    missing = post(url, HELLO, headers={})
    assert missing.status_code == 401 and error_of(missing)["code"] == "invalid_api_key"
    wrong = post(url, HELLO, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{url}/models", timeout=10).status_code == 401
    unknown = post(url, {**HELLO, "model": "gpt-4o"})
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "model_not_found"
    bad = post(url, {**HELLO, "temperature": "hot"})
    assert bad.status_code == 400 and error_of(bad)["param"] == "temperature"
    broken = httpx.post(f"{url}/chat/completions", content=b"{not json", headers=AUTH, timeout=10)
    assert broken.status_code == 400 and error_of(broken)["type"] == "invalid_request_error"
    nowhere = httpx.get(f"{served.base}/v1/nothing", headers=AUTH, timeout=10)
    assert nowhere.status_code == 404 and error_of(nowhere)
    too_long = {**HELLO, "messages": [{"role": "user", "content": "lorem ipsum " * 1500}]}
    for stream in (False, True):
        overflow = post(url, {**too_long, "stream": stream})
        assert overflow.status_code == 400 and error_of(overflow)["code"] == "context_length_exceeded"


@pytest.mark.model
def test_audio_without_the_audio_path_is_a_clear_400(served: Served) -> None:
    from tests.server.test_serve_media import wav_base64

    part = {"type": "input_audio", "input_audio": {"data": wav_base64(0.2), "format": "wav"}}
    body = {**HELLO, "messages": [{"role": "user", "content": [part, {"type": "text", "text": "What?"}]}]}
    refused = post(served.url, body)
    assert refused.status_code == 400
    assert "audio input is not available" in error_of(refused)["message"]
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    body = {**HELLO, "messages": [{"role": "user", "content": [image]}]}
    assert "--allow-fetch" in error_of(post(served.url, body))["message"]


def test_loading_is_a_503_and_big_bodies_a_413(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = FakeEngine()

    def load() -> ModelInfo:
        gate.wait(30)
        return fake.load()

    with serving(fake, tmp_path, api_key=None, load=load, max_body=4096) as srv:
        loading = post(srv.url, HELLO, headers={})
        assert loading.status_code == 503 and error_of(loading)["code"] == "model_loading"
        assert httpx.get(f"{srv.base}/health", timeout=10).status_code == 503
        gate.set()
        while srv.worker.state == "loading":
            threading.Event().wait(0.02)
        assert httpx.get(f"{srv.base}/health", timeout=10).status_code == 200
        big = post(srv.url, {**HELLO, "messages": [{"role": "user", "content": "x" * 5000}]}, headers={})
        assert big.status_code == 413 and error_of(big)
        fine = post(srv.url, HELLO, headers={})
        assert fine.status_code == 200 and fine.json()["choices"][0]["message"]["role"] == "assistant"
