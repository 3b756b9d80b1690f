"""The chat UI's record key with the tiny Gemma 3n: the recording is read while it is made, and the answer
to the message sent with it evaluates only what follows the clip."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.audio.config import AudioConfig
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.media.mic import Level, Recording
from g3chat.core.store import Store
from g3chat.runtime import Runtime
from g3chat.tui.widgets.record_toggle import RecordToggle
from tests.conftest import FIXTURES
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model
from tests.fixtures.tiny_gemma3n_reference import speech_clip
from tests.tui.conftest import SIZE, wait_until
from tests.tui.test_attachments import chips, enter, idle

pytestmark = [pytest.mark.asyncio]
SOFT = 24  # the tiny model's soft tokens per clip


class FeedingRecorder:
    """The microphone's stand-in: 50 ms blocks of ``samples`` to ``on_block`` as they are "recorded"."""

    def __init__(
        self, on_level: Callable[[Level], None], on_block: Callable[[Any], None], samples: Any
    ) -> None:
        self.on_level, self.on_block, self.samples = on_level, on_block, samples

    def record(self, stop: threading.Event) -> Recording:
        n = 0
        while n < len(self.samples) and not stop.wait(0.01):
            block = self.samples[n : n + 800]
            self.on_block(block)
            n += len(block)
            self.on_level(Level(0.8, n / 16_000, True))
        return Recording(self.samples[:n], 16_000, "time")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    model = tiny_chat_model(tmp_path_factory.mktemp("tui-hearing") / "tiny-gemma3n-chat.gguf")
    engine = LlamaCppEngine(
        model, n_ctx=512, n_threads=2, flash_attn=False, state_memory_mb=0, state_dir=None,
        audio_weights=[FIXTURES / "audio" / "tiny-gemma3n-mmproj.gguf"],
        audio_config=AudioConfig(soft_tokens=SOFT),
    )  # fmt: skip
    engine.load()
    yield engine
    engine.close()


async def test_the_recording_is_heard_while_it_is_made(
    runtime: Runtime, store: Store, engine: LlamaCppEngine, tmp_path: Path
) -> None:
    runtime.settings.generation.max_tokens = 2
    runtime.settings.generation.temperature = 0.0
    runtime.settings.generation.system_prompt = ""  # words of the tiny vocabulary only
    runtime.settings.ui.tools = False
    samples = np.round(speech_clip()[:32_000] * 32768).astype(np.int16)
    app = runtime.chat_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready", timeout=60)
        tray = app.chat_screen.tray
        toggle = app.chat_screen.query_one(RecordToggle)
        toggle.recorder_factory = lambda on_level: FeedingRecorder(on_level, tray._block, samples)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(chips(app)) == 1, timeout=30)
        await wait_until(pilot, lambda: not app.live_hearing.active, timeout=30)
        listener = app.live_hearing.last
        assert listener is not None and listener.error is None and listener.rows_read == SOFT + 1
        await enter(pilot, app, "the keeper")
        await wait_until(pilot, lambda: idle(app) and len(store.list_conversations()) == 1, timeout=60)
        await pilot.pause()
    [question, answer] = store.messages(store.latest_conversation().id)
    assert question.parts[0].kind == "audio" and answer.role == "assistant"
    assert 0 < engine._evaluated < SOFT  # the clip was in the cache: only what follows it was evaluated


class PausingRecorder(FeedingRecorder):
    """Speech to ``speech_end``, then silence: the pause is announced, and the recording stops by silence
    after ``silent`` samples, trimmed 0.3 s after the speech (as the real Recorder does)."""

    def __init__(self, tray: Any, on_level: Callable[[Level], None], samples: Any, speech_end: int) -> None:
        super().__init__(on_level, tray._block, samples)
        self.on_pause, self.speech_end = tray._pause, speech_end

    def record(self, stop: threading.Event) -> Recording:
        end = self.speech_end + 4_800
        for n in range(0, len(self.samples), 800):
            self.on_block(self.samples[n : n + 800])
            if n == self.speech_end:
                self.on_pause(end)
            self.on_level(Level(0.8 if n < self.speech_end else 0.0, (n + 800) / 16_000, n < self.speech_end))
            stop.wait(0.01)
        return Recording(self.samples[:end], 16_000, "silence")


async def test_a_recording_ended_by_silence_is_read_to_its_end_before_it_stops(
    runtime: Runtime, store: Store, engine: LlamaCppEngine
) -> None:
    runtime.settings.generation.max_tokens = 2
    runtime.settings.generation.temperature = 0.0
    runtime.settings.generation.system_prompt = ""
    runtime.settings.ui.tools = False
    samples = np.round(speech_clip()[:32_000] * 32768).astype(np.int16)
    samples[16_000:] = 0  # 1 s of speech, then 1 s of silence
    app = runtime.chat_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready", timeout=60)
        tray = app.chat_screen.tray
        toggle = app.chat_screen.query_one(RecordToggle)
        toggle.recorder_factory = lambda on_level: PausingRecorder(tray, on_level, samples, 16_000)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(chips(app)) == 1, timeout=30)
        await wait_until(pilot, lambda: not app.live_hearing.active, timeout=30)
        listener = app.live_hearing.last
        assert listener is not None and listener.error is None and listener.read_ahead > 0
        assert listener.cut_back == 0 and listener.n_samples == 20_800
        await enter(pilot, app, "")  # the recording alone: the prompt read ahead is the answer's
        await wait_until(pilot, lambda: idle(app) and len(store.list_conversations()) == 1, timeout=60)
        await pilot.pause()
    [question, answer] = store.messages(store.latest_conversation().id)
    assert question.parts[0].kind == "audio" and answer.role == "assistant"
    assert engine._evaluated == 1  # everything up to the generation prompt was read while it was silent
