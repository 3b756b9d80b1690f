"""An audio file read into the tiny Gemma 3n's cache while it is decoded (engine/listen_along.py) gives the
logits of reading it at once (checked as test_audio_listening.py checks a recording), and its first window
is in the cache before its last block is decoded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.listen_along import hear_file
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.errors import MediaError
from g3chat.core.media.audio import attach_audio, audio_blocks, wav_bytes
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart, Message, user
from tests.core.audio.test_audio_engine import MMPROJ, SOFT, make_engine, prefill_logits
from tests.core.audio.test_audio_listening import assert_read_at_once
from tests.fixtures.media_files import wav
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model
from tests.fixtures.tiny_gemma3n_reference import speech_clip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    path = tiny_chat_model(tmp_path_factory.mktemp("file-listening") / "tiny-gemma3n-chat.gguf")
    engine = make_engine(path, [MMPROJ])
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MediaStore:
    return MediaStore(tmp_path_factory.mktemp("file-listening-media"))


def conversation(live: AttachmentPart) -> list[Message]:
    return [user("the keeper", [live])]


def watched(engine: LlamaCppEngine, seen: list[int]) -> Callable[[Path], Iterator[Any]]:
    """The decoder, noting the cache's length before each block is decoded."""

    def blocks(path: Path) -> Iterator[Any]:
        inner = audio_blocks(path)
        while True:
            before = engine.llama.n_tokens
            try:
                block = next(inner)
            except StopIteration:
                return
            seen.append(before)
            yield block

    return blocks


def test_a_file_read_as_it_is_decoded_gives_the_logits_of_reading_it_at_once(
    engine: LlamaCppEngine, store: MediaStore, tmp_path: Path
) -> None:
    """13 s of 44.1 kHz stereo: four windows of the tiny model (3 x 3.872 s and the rest), resampled and
    averaged block by block."""
    clip = np.resize(speech_clip(), 13 * 16_000)
    at_44k = np.interp(np.arange(13 * 44_100) * 16_000 / 44_100, np.arange(len(clip)), clip)
    path = wav(tmp_path / "memo.wav", at_44k, 44_100, channels=2)
    KVSession(engine.llama).truncate(0)
    seen: list[int] = []
    notes: list[str] = []
    part = hear_file(engine, store, path, conversation, note=notes.append, blocks=watched(engine, seen))
    assert notes == []
    assert part.sha256 == attach_audio(store, path).sha256  # the WAV attaching it after decoding stores
    messages = [user("the keeper", [part])]
    plan = engine.plan(messages)
    assert len(plan.spans) == 4 and all(end - start == SOFT + 1 for start, end in plan.spans)
    # nothing of the clip was read before the first block; its first window (rows and <end_of_audio>) was
    # in the cache before the decoder decoded the last block (fed a second at a time, it waits while two
    # windows, 7.7 s here, are still unread)
    assert len(seen) > 50 and seen[0] <= plan.spans[0][0]
    assert seen[-1] >= plan.spans[0][1]
    got, evaluated = prefill_logits(engine, messages, fresh=False)
    assert evaluated == 1  # the clip and the prompt after it were read: the last token, for its logits
    # the logits of reading the listened rows at once, and those rows are the stored WAV's, encoded afresh
    # (not compared to the fresh logits directly: the encoder's rounding, which moves with how the blocks
    # were batched, becomes up to ~3e-3 in the tiny random model's logits)
    assert_read_at_once(engine, messages, got)


def test_a_file_that_fails_midway_leaves_the_cache_as_it_was(
    engine: LlamaCppEngine, store: MediaStore, tmp_path: Path
) -> None:
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_bytes(np.resize(speech_clip(), 13 * 16_000)))  # blocks of 1,024 samples
    [(start, _), *_] = engine.plan([user("the keeper", [attach_audio(store, path)])]).spans
    KVSession(engine.llama).truncate(0)
    prefill_logits(engine, [user("the keeper")], fresh=True)
    cached = engine.cached_tokens()
    at_failure: list[int] = []

    def failing(path: Path) -> Iterator[Any]:
        for index, block in enumerate(audio_blocks(path)):
            if index == 150:  # 9.6 s decoded: feeding 9.2 s, it waited for the first window (7.7 s unread)
                at_failure.append(engine.llama.n_tokens)
                raise MediaError(f"{path}: corrupt audio (Invalid data found when processing input)")
            yield block

    notes: list[str] = []
    with pytest.raises(MediaError, match="corrupt audio"):
        hear_file(engine, store, path, conversation, note=notes.append, blocks=failing)
    assert notes == [] and at_failure[0] >= start + SOFT + 1  # the first window was read
    now = engine.cached_tokens()
    assert len(now) <= start and now == cached[: len(now)]  # cut back: nothing of the clip is left
