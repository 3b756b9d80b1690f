"""A recording read into the tiny Gemma 3n's cache while it is made gives the logits of reading it at once.

The at-once reference is the engine's own prefill of the stored recording from an empty cache, its rows
encoded afresh from the stored WAV (test_audio_engine.py checks that path against the validated one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from g3chat.core.engine.hearing import windows
from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.listening import Listener, can_listen, live_part
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.errors import EngineError
from g3chat.core.media.audio import audio_part
from g3chat.core.media.store import MediaStore
from g3chat.core.types import assistant, user
from tests.core.audio.test_audio_engine import MMPROJ, SOFT, TOLERANCE, make_engine, prefill_logits
from tests.fixtures.audio_synth import tone_mix
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model
from tests.fixtures.tiny_gemma3n_reference import speech_clip

BLOCK = 800  # 50 ms, as the recorder delivers them


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    path = tiny_chat_model(tmp_path_factory.mktemp("listening") / "tiny-gemma3n-chat.gguf")
    engine = make_engine(path, [MMPROJ])
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MediaStore:
    return MediaStore(tmp_path_factory.mktemp("listening-media"))


def as_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def record(engine: LlamaCppEngine, before: list, samples: np.ndarray, store: MediaStore) -> list:
    """Listen to ``samples`` fed as the recorder feeds them; the messages with the stored recording."""
    live = live_part()
    listener = Listener(engine, [*before, user("the keeper", [live])], live)
    for start in range(0, len(samples), BLOCK):
        listener.feed(samples[start : start + BLOCK])
    part = audio_part(store, samples, "recording.wav")
    listener.finish(part)
    return [*before, user("the keeper", [part])]


@pytest.mark.parametrize("seconds", [3.0, 5.0])  # within the tiny model's 3.872 s window, and past it
def test_listened_clip_gives_the_logits_of_reading_it_at_once(
    engine: LlamaCppEngine, store: MediaStore, seconds: float
) -> None:
    samples = as_int16(np.resize(speech_clip(), int(seconds * 16_000)))
    KVSession(engine.llama).truncate(0)
    messages = record(engine, [], samples, store)
    plan = engine.plan(messages)
    assert len(plan.spans) == (1 if seconds < 3.872 else 2)  # 30 s (here 3.872 s) after 30 s
    assert all(end - start == SOFT + 1 for start, end in plan.spans)
    got, evaluated = prefill_logits(engine, messages, fresh=False)
    assert evaluated == 1  # the clip and the prompt after it were read: the last token, for its logits
    assert engine._hearing is not None
    engine._hearing._rows.clear()  # read at once: rows encoded afresh from the stored WAV
    want, evaluated = prefill_logits(engine, messages, fresh=True)
    assert evaluated == len(plan.tokens)
    assert float(np.abs(got - want).max()) <= TOLERANCE
    if seconds > 4:
        return
    # the comparison is sharp: the same prompt with another recording moves the logits far more
    other = record(engine, [], as_int16(tone_mix(seconds, seed=4)), store)
    moved, _ = prefill_logits(engine, other, fresh=False)
    assert float(np.abs(moved - want).max()) > 100 * TOLERANCE


def feed(listener: Listener, samples: np.ndarray) -> None:
    for start in range(0, len(samples), BLOCK):
        listener.feed(samples[start : start + BLOCK])


def read_ahead(listener: Listener) -> None:
    assert listener.ahead_done.wait(60)
    assert listener.read_ahead > 0 and listener.error is None


def assert_read_at_once(engine: LlamaCppEngine, messages: list, got: np.ndarray) -> None:
    """``got`` are the logits of reading the clip's rows at once, and those rows are the stored clip's.

    Two checks, as the tiny random model turns the encoder's float32 rounding between chunkings (1e-6 in
    the rows) into ~1e-3 in its logits: the cache the listener left equals reading its rows at once (to
    1e-4: llama.cpp's batches are split differently), and those rows equal the stored clip's, encoded
    afresh."""
    hearing = engine._hearing
    assert hearing is not None
    part = messages[-1].parts[0]
    listened = {k[1]: v for k, v in hearing._rows.items() if k[0] == part.sha256}
    want, evaluated = prefill_logits(engine, messages, fresh=True)  # the listened rows, at once
    assert evaluated == len(engine.plan(messages).tokens)
    assert float(np.abs(got - want).max()) <= 1e-4
    hearing._rows.clear()
    n_samples = hearing._n_samples(part)
    assert sorted(listened) == windows(n_samples, hearing.window)  # the stored clip's own layout
    for window, rows in listened.items():
        assert float(np.abs(hearing.rows(part, window) - rows).max()) <= 1e-5


@pytest.mark.parametrize("spoken", [24_000, 60_800])  # the end in the first window, and in the next
def test_the_end_read_ahead_in_the_silence_is_the_trimmed_clip(
    engine: LlamaCppEngine, store: MediaStore, spoken: int
) -> None:
    """Silence begins at 1.5 s: the clip's end (to 1.8 s) and the prompt after it are read while the
    silence lasts; the stopped recording, trimmed there, then costs the answer one token. Silence at 3.8 s
    puts the end (4.1 s) past the tiny model's 3.872 s window: the read-ahead opens the next one."""
    speech = as_int16(np.resize(speech_clip(), spoken))
    samples = np.concatenate([speech, np.zeros(24_000, np.int16)])  # and 1.5 s of silence
    end = spoken + 4_800
    KVSession(engine.llama).truncate(0)
    live = live_part()
    listener = Listener(engine, [user("the keeper", [live])], live)
    feed(listener, samples[: spoken + 800])  # the first silent block, then the recorder's on_pause
    deadline = time.monotonic() + 30
    while listener.rows_read < 6 and time.monotonic() < deadline:  # read while recorded, 1 s at a time
        time.sleep(0.01)
    assert listener.rows_read >= 6
    listener.expect_end(end)
    feed(listener, samples[spoken + 800 :])
    read_ahead(listener)
    part = audio_part(store, samples[:end], "recording.wav")  # as the recorder trims it
    listener.finish(part)
    assert listener.cut_back == 0
    messages = [user("the keeper", [part])]
    assert len(engine.plan(messages).spans) == (1 if end <= 61_952 else 2)
    got, evaluated = prefill_logits(engine, messages, fresh=False)
    assert evaluated == 1  # the prompt's last token, for fresh logits
    assert_read_at_once(engine, messages, got)


@pytest.mark.parametrize("how", ["resumed", "stopped by key"])
@pytest.mark.parametrize("seconds", [3.0, 5.0])
def test_a_read_ahead_is_cut_back_when_the_clip_goes_on(
    engine: LlamaCppEngine, store: MediaStore, how: str, seconds: float
) -> None:
    """Silence at 1 s, read ahead; then speech resumes (or the recording is stopped by a key, untrimmed):
    the whole clip, read on from the last real row, gives the logits of reading it at once."""
    samples = as_int16(np.resize(speech_clip(), int(seconds * 16_000)))
    samples[16_000:32_000] = 0
    KVSession(engine.llama).truncate(0)
    live = live_part()
    listener = Listener(engine, [user("the keeper", [live])], live)
    feed(listener, samples[:16_800])
    listener.expect_end(16_000 + 4_800)
    feed(listener, samples[16_800:32_000])
    read_ahead(listener)
    if how == "resumed":
        listener.expect_end(None)
    feed(listener, samples[32_000:])
    part = audio_part(store, samples, "recording.wav")
    listener.finish(part)
    assert listener.cut_back == 1
    messages = [user("the keeper", [part])]
    got, evaluated = prefill_logits(engine, messages, fresh=False)
    assert evaluated == 1  # the clip and the prompt after it were read: the last token, for its logits
    assert_read_at_once(engine, messages, got)


def test_cancelling_discards_what_was_read(engine: LlamaCppEngine, store: MediaStore) -> None:
    history = [user("hello"), assistant("the sea")]
    prefill_logits(engine, history, fresh=True)
    before = engine.cached_tokens()
    live = live_part()
    listener = Listener(engine, [*history, user("the keeper", [live])], live)
    listener.feed(as_int16(speech_clip()))
    deadline = time.monotonic() + 30
    while listener.rows_read == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.rows_read > 0  # it has read the clip's first soft tokens
    listener.feed(np.zeros(4000, np.int16))
    listener.cancel()
    after = engine.cached_tokens()
    assert 0 < len(after) <= len(before) and after == before[: len(after)]  # the history's shared part
    assert all(t >= 0 for t in after)  # and nothing of the clip


def test_a_listener_reports_what_went_wrong(
    engine: LlamaCppEngine, store: MediaStore, tmp_path: Path
) -> None:
    live = live_part()
    listener = Listener(engine, [user("the keeper", [live])], live)
    listener.feed(np.zeros(8000, np.int16))
    other = audio_part(store, np.zeros(9000, np.int16), "other.wav")  # not what was fed
    with pytest.raises(Exception, match="not the recording"):
        listener.finish(other)
    assert all(t >= 0 for t in engine.cached_tokens())


def test_without_audio_weights_there_is_no_listening(engine: LlamaCppEngine) -> None:
    assert can_listen(engine)
    deaf = make_engine(Path(engine.model_path), [])
    try:
        assert not can_listen(deaf)
        with pytest.raises(EngineError):
            Listener(deaf, [user("a", [live_part()])], live_part())
    finally:
        deaf.close()
