"""Content parts with media through ``serve``: images on the tiny Gemma 3n with its vision projector, audio
through Gemma 3n's audio path (the tiny model and its converter-made audio weights)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.audio.config import AudioConfig
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.media.audio import audio_part, wav_bytes
from g3chat.core.media.images import attach_image
from g3chat.core.media.store import MediaStore
from g3chat.core.types import user
from tests.conftest import FIXTURES
from tests.server.conftest import API_KEY, MODEL, serving

pytestmark = pytest.mark.model

TEXT = "the keeper"  # the tiny vocabulary: lower-case letters, spaces, full stops


def wav_base64(seconds: float) -> str:
    t = np.arange(int(16000 * seconds)) / 16000
    return base64.b64encode(wav_bytes((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))).decode()


def ask(url: str, content: list[dict[str, Any]]) -> Any:
    from openai import OpenAI

    with OpenAI(base_url=url, api_key=API_KEY, max_retries=0, timeout=120) as client:
        messages: Any = [{"role": "user", "content": content}]
        return client.chat.completions.create(model=MODEL, messages=messages, max_tokens=1, temperature=0)


@pytest.fixture(scope="module")
def vision(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model

    work = tmp_path_factory.mktemp("serve-vision")
    model = tiny_chat_model(work / "tiny-gemma3n-vision.gguf", vision=True)
    engine = LlamaCppEngine(
        model, n_ctx=1024, n_threads=2, flash_attn=False, state_memory_mb=0, state_dir=None,
        mmproj=FIXTURES / "vision" / "tiny-gemma3n-vision-mmproj.gguf",
    )  # fmt: skip
    engine.load()
    yield engine
    engine.close()


def test_an_image_as_a_data_url_and_as_a_file(vision: LlamaCppEngine, tmp_path: Path) -> None:
    from PIL import Image

    from tests.fixtures.gemma3n_vision import pattern_image

    path = tmp_path / "pattern.png"
    Image.fromarray(pattern_image(1)).save(path)
    expected = vision.count_tokens([user(TEXT, [attach_image(MediaStore(tmp_path / "m"), path)])])
    data = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    with serving(vision, tmp_path / "media") as srv:
        for url in (data, path.as_uri()):
            content: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": TEXT},
            ]
            answer = ask(srv.url, content)
            # the picture's soft tokens (256 for Gemma 3n) are in the prompt the engine evaluated
            assert answer.usage.prompt_tokens == expected
            assert answer.usage.prompt_tokens > vision.count_tokens([user(TEXT)]) + 256


def test_input_audio_is_heard_through_gemma_3ns_audio_path(tmp_path: Path) -> None:
    from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model

    model = tiny_chat_model(tmp_path / "tiny-gemma3n-chat.gguf")
    engine = LlamaCppEngine(
        model, n_ctx=512, n_threads=2, flash_attn=False, state_memory_mb=0, state_dir=None,
        audio_weights=[FIXTURES / "audio" / "tiny-gemma3n-mmproj.gguf"],
        audio_config=AudioConfig(soft_tokens=24),
    )  # fmt: skip
    engine.load()
    try:
        clip = wav_base64(0.5)
        samples = np.frombuffer(base64.b64decode(clip)[44:], dtype="<i2")
        part = audio_part(MediaStore(tmp_path / "m"), samples, "audio.wav")
        expected = engine.count_tokens([user(TEXT, [part])])
        assert expected > engine.count_tokens([user(TEXT)])
        with serving(engine, tmp_path / "media") as srv:
            content: list[dict[str, Any]] = [
                {"type": "input_audio", "input_audio": {"data": clip, "format": "wav"}},
                {"type": "text", "text": TEXT},
            ]
            assert ask(srv.url, content).usage.prompt_tokens == expected
    finally:
        engine.close()
