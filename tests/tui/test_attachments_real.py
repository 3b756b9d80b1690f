"""Attachments in the chat UI over the real engine: the offline test model with a tiny random-weight vision
projector (tests/fixtures/tiny_mmproj.py), so the image really goes through llama.cpp's mtmd."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.store import Store
from g3chat.core.types import AttachmentPart, user
from g3chat.runtime import Runtime
from tests.fixtures import media_files as mf
from tests.fixtures.tiny_mmproj import write_tiny_mmproj
from tests.tui.conftest import SIZE, wait_until
from tests.tui.test_attachments import chips, enter, idle, notes

pytestmark = [pytest.mark.asyncio, pytest.mark.model]
SIDE = 4  # 16 tokens per image


@pytest.fixture(scope="module")
def vision_engine(
    test_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaCppEngine]:
    mmproj = write_tiny_mmproj(tmp_path_factory.mktemp("tui-vision") / "mmproj-tiny.gguf", side=SIDE)
    engine = LlamaCppEngine(
        test_model_path, n_ctx=512, n_threads=1, flash_attn=False, mmproj=mmproj, name="test-model"
    )
    engine.load()
    yield engine
    engine.close()


async def test_image_and_video_through_mtmd(
    runtime: Runtime, store: Store, vision_engine: LlamaCppEngine, tmp_path: Path
) -> None:
    runtime.settings.generation.max_tokens = 2
    runtime.settings.generation.temperature = 0.0
    picture = mf.image(tmp_path / "red.png", "PNG", size=(32, 32))
    clip = mf.color_video(tmp_path / "clip.mp4", 2)
    app = runtime.chat_app(store, engine=vision_engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready", timeout=60)
        await enter(pilot, app, f"/video {clip}")
        await wait_until(pilot, lambda: any("frames" in n for n in notes(app)), timeout=30)
        found = re.fullmatch(
            r"clip\.mp4: 2 frames, (\d+) prompt tokens \(sent with your next message\)", notes(app)[-1]
        )
        assert found and int(found.group(1)) >= 2 * SIDE * SIDE, notes(app)
        first = app.chat_screen.tray.query("AttachmentChip").first()
        await pilot.click(first.query_one(".chip-remove"))
        await wait_until(pilot, lambda: chips(app) == [])
        await enter(pilot, app, f"/image {picture}\nWhat is this?")
        await wait_until(pilot, lambda: idle(app) and len(store.list_conversations()) == 1, timeout=120)
        await pilot.pause()
        [question, answer] = store.messages(store.latest_conversation().id)
        [image] = [p for p in question.parts if isinstance(p, AttachmentPart)]
        assert answer.status == "complete" and answer.error is None
        text_only = vision_engine.count_tokens([user("What is this?")])
        assert answer.prompt_tokens == text_only + SIDE * SIDE + 3  # the image's tokens entered the context
        assert vision_engine.count_tokens([user("What is this?", [image])]) == answer.prompt_tokens
        assert not app.chat_screen.chat.query(".notice")  # the model takes images: nothing to explain
