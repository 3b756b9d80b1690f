"""Gemma 3n hears through the engine: audio attachments in the normal prefill of the tiny Gemma 3n.

The model is tests/fixtures/audio/tiny-gemma3n.gguf with its token texts made chat-ready
(tests/fixtures/tiny_gemma3n_chat.py); its audio weights are the converter's mmproj. The reference for the
engine is the path test_embedding_injection.py validates against transformers: the same prompt ids, the
clip's rows from the encoder, decoded run by run through engine/embeddings.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.layout import AudioTokens, audio_block_text, clip_rows, split_prompt
from g3chat.core.audio.weights import load_audio_weights
from g3chat.core.engine.embeddings import decode_embeddings, logits_rows
from g3chat.core.engine.hearing import NO_WEIGHTS, window_samples, windows
from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.media.audio import audio_part, read_wav
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart, GenerationParams, Message, assistant, collect, user
from tests.conftest import FIXTURES as ALL_FIXTURES
from tests.fixtures.audio_synth import SMALL, random_weights, safetensors_bytes, tone_mix
from tests.fixtures.gguf_edit import with_metadata
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model
from tests.fixtures.tiny_gemma3n_reference import speech_clip

FIXTURES = ALL_FIXTURES / "audio"
MMPROJ = FIXTURES / "tiny-gemma3n-mmproj.gguf"
TINY_TOKENS = AudioTokens(boa=63, eoa=72, soft=73)
SOFT = 24  # the tiny model's soft tokens per clip (its config's audio_soft_tokens_per_image)
TOLERANCE = 1e-3
GREEDY = GenerationParams(temperature=0, max_tokens=2)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hearing")


@pytest.fixture(scope="module")
def tiny_path(workdir: Path) -> Path:
    return tiny_chat_model(workdir / "tiny-gemma3n-chat.gguf")


def make_engine(path: Path, weights: list[Path], **extra: Any) -> LlamaCppEngine:
    engine = LlamaCppEngine(
        path, n_ctx=512, n_threads=2, flash_attn=False, state_memory_mb=0, state_dir=None,
        audio_weights=weights, audio_config=AudioConfig(soft_tokens=SOFT), **extra,
    )  # fmt: skip
    engine.load()
    return engine


@pytest.fixture(scope="module")
def hearing(tiny_path: Path) -> Iterator[LlamaCppEngine]:
    engine = make_engine(tiny_path, [MMPROJ])
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def store(workdir: Path) -> MediaStore:
    return MediaStore(workdir / "media")


@pytest.fixture(scope="module")
def speech(store: MediaStore) -> AttachmentPart:
    return audio_part(store, speech_clip(), "speech.wav")


@pytest.fixture(scope="module")
def encoder() -> AudioEncoder:
    weights = load_audio_weights(MMPROJ, AudioConfig(vocab_offset=TINY_TOKENS.eoa, soft_tokens=SOFT))
    return AudioEncoder(weights.config, weights.tensors)


def prefill_logits(engine: LlamaCppEngine, messages: list[Message], *, fresh: bool) -> tuple[np.ndarray, int]:
    """The next-token logits after the engine's own prefill of ``messages``, and how many positions it
    evaluated (``fresh``: from an empty cache)."""
    if fresh:
        KVSession(engine.llama).truncate(0)
    list(engine._prefill(engine.plan(messages), None))
    return logits_rows(engine.llama, 1)[0], engine._evaluated


def manual_logits(llm: Any, ids: list[int], clips: list[np.ndarray]) -> np.ndarray:
    """The validated path: token runs as tokens, each clip's rows through decode_embeddings."""
    kv = KVSession(llm)
    kv.truncate(0)
    for run in split_prompt(ids, clips, TINY_TOKENS):
        if run.rows is None:
            kv.decode(list(run.ids), all_logits=False)
        else:
            decode_embeddings(llm, run.rows, ids=run.ids)
    return logits_rows(llm, 1)[0]


def as_soft_tokens(tokens: list[int], spans: list[tuple[int, int]]) -> list[int]:
    """The plan's tokens with each clip's placeholders written as Gemma3nProcessor's ids."""
    out = list(tokens)
    for start, end in spans:
        out[start:end] = [TINY_TOKENS.soft] * (end - start - 1) + [TINY_TOKENS.eoa]
    return out


def test_windows_are_30_s_after_30_s_the_last_holding_the_rest() -> None:
    assert windows(0) == [(0, 0)] and windows(100) == [(0, 100)]
    assert windows(480_000) == [(0, 480_000)]
    assert windows(496_000) == [(0, 480_000), (480_000, 496_000)]  # 31 s: 30 s and 1 s
    assert windows(480_001) == [(0, 480_000), (480_000, 480_001)]  # the sliver is padded when heard
    assert windows(960_000) == [(0, 480_000), (480_000, 960_000)]  # no empty window after a full one
    cuts = windows(16_000 * 95)
    assert [b - a for a, b in cuts] == [480_000] * 3 + [80_000] and cuts[-1][1] == 16_000 * 95
    # Gemma 3n's 188 soft tokens hold 30 s; the tiny model's 24 hold 3.872 s (384 frames of 10 ms)
    assert window_samples(AudioConfig()) == 480_000
    assert window_samples(AudioConfig(soft_tokens=SOFT)) == 61_952


def test_engine_hears_the_clip_as_the_validated_path_does(
    hearing: LlamaCppEngine, speech: AttachmentPart, encoder: AudioEncoder
) -> None:
    messages = [user("the keeper", [speech])]
    plan = hearing.plan(messages)
    [(start, end)] = plan.spans
    assert end - start == SOFT + 1 and plan.tokens[start - 1] == TINY_TOKENS.boa
    assert all(t < 0 for t in plan.tokens[start:end]) and hearing.info is not None and hearing.info.audio
    got, evaluated = prefill_logits(hearing, messages, fresh=True)
    assert evaluated == len(plan.tokens)
    samples, _ = read_wav(speech.path)  # the stored 16-bit WAV is what the engine hears
    rows = clip_rows(encoder, samples, eoa=TINY_TOKENS.eoa)
    want = manual_logits(hearing.llama, as_soft_tokens(plan.tokens, plan.spans), [rows])
    assert float(np.abs(got - want).max()) <= TOLERANCE
    # the clip matters: another clip in the same place moves the logits far more than the tolerance
    silence = clip_rows(encoder, tone_mix(3.0, seed=5), eoa=TINY_TOKENS.eoa)
    other = manual_logits(hearing.llama, as_soft_tokens(plan.tokens, plan.spans), [silence])
    assert float(np.abs(got - other).max()) > 100 * TOLERANCE
    # and a generated answer starts with the validated path's most likely token
    result = collect(hearing.stream_chat(messages, GREEDY))
    assert result.error is None and result.usage is not None and result.usage.completion_tokens == 2
    assert hearing.cached_tokens()[len(plan.tokens)] == int(np.argmax(want))  # the first answer token


def test_a_follow_up_text_turn_evaluates_only_its_new_tokens(
    hearing: LlamaCppEngine, speech: AttachmentPart
) -> None:
    first = [user("the keeper", [speech])]
    answer = collect(hearing.stream_chat(first, GREEDY))
    assert answer.error is None
    follow = [*first, assistant("the sea"), user("and then")]
    again = collect(hearing.stream_chat(follow, GREEDY))
    n_first = len(hearing.plan(first).tokens)
    assert again.usage is not None and again.error is None
    assert again.usage.prompt_eval_tokens == again.usage.prompt_tokens - n_first
    # the reused keys and values give the logits a fresh evaluation gives
    reused, evaluated = prefill_logits(hearing, follow, fresh=False)
    assert evaluated == 1  # the whole prompt is cached: only its last token is evaluated again
    fresh, evaluated = prefill_logits(hearing, follow, fresh=True)
    assert evaluated == again.usage.prompt_tokens
    assert float(np.abs(reused - fresh).max()) <= TOLERANCE


def test_a_different_clip_does_not_match_the_cache(
    hearing: LlamaCppEngine, speech: AttachmentPart, store: MediaStore
) -> None:
    other = audio_part(store, tone_mix(3.0, seed=6), "tones.wav")
    first = [user("the keeper", [speech])]
    prefill_logits(hearing, first, fresh=True)
    swapped = [user("the keeper", [other])]
    plan = hearing.plan(swapped)
    [(start, _)] = plan.spans
    assert KVSession(hearing.llama).common_prefix(plan.tokens) == start
    _, evaluated = prefill_logits(hearing, swapped, fresh=False)
    assert evaluated == len(plan.tokens) - start  # the new clip and everything after it


def test_a_long_clip_is_heard_in_windows(
    hearing: LlamaCppEngine, store: MediaStore, encoder: AudioEncoder
) -> None:
    """Longer than the model's window (30 s for Gemma 3n, 3.872 s for the tiny one): windows of 3.872 s
    and the rest (0.256 s), each its own audio block, every one of them decoded from its own part of the
    clip."""
    samples = tone_mix(8.0, seed=7)
    long = audio_part(store, samples, "long.wav")
    messages = [user("the keeper", [long])]
    plan = hearing.plan(messages)
    assert len(plan.spans) == 3 and all(b - a == SOFT + 1 for a, b in plan.spans)
    short = hearing.count_tokens([user("the keeper", [audio_part(store, tone_mix(2.0, seed=7), "s.wav")])])
    assert hearing.count_tokens(messages) - short == 2 * (plan.spans[1][0] - plan.spans[0][0])
    KVSession(hearing.llama).truncate(0)
    result = collect(hearing.stream_chat(messages, GREEDY))
    assert result.error is None and result.usage is not None
    assert result.usage.prompt_eval_tokens == len(plan.tokens)
    placeholders = [t for t in hearing.cached_tokens() if t < 0]
    assert len(placeholders) == 3 * (SOFT + 1) and len(set(placeholders)) == 3 * (SOFT + 1)
    got, _ = prefill_logits(hearing, messages, fresh=True)
    stored, _ = read_wav(long.path)
    cuts = windows(len(stored), 61_952)
    assert cuts == [(0, 61_952), (61_952, 123_904), (123_904, 128_000)]
    rows = [clip_rows(encoder, stored[a:b], eoa=TINY_TOKENS.eoa) for a, b in cuts]
    want = manual_logits(hearing.llama, as_soft_tokens(plan.tokens, plan.spans), rows)
    assert float(np.abs(got - want).max()) <= TOLERANCE


def test_encoder_loads_on_first_use_and_is_freed_on_close(tiny_path: Path, speech: AttachmentPart) -> None:
    engine = make_engine(tiny_path, [MMPROJ])
    try:
        hearing = engine._hearing
        assert hearing is not None and hearing._encoder is None
        engine.count_tokens([user("the keeper", [speech])])
        assert hearing._encoder is None  # counting tokens does not need the encoder
        collect(engine.stream_chat([user("the keeper", [speech])], GREEDY))
        encoder = hearing._encoder
        assert encoder is not None
        collect(engine.stream_chat([user("the keeper", [speech]), assistant("a"), user("b")], GREEDY))
        assert hearing._encoder is encoder  # once per engine
    finally:
        engine.close()
    assert hearing._encoder is None and engine._hearing is None


def test_without_weights_the_problem_names_the_command(tiny_path: Path, speech: AttachmentPart) -> None:
    engine = make_engine(tiny_path, [])
    try:
        problem = engine.media_problem(speech)
        assert problem is not None and problem.reason == NO_WEIGHTS
        assert "g3chat models pull --audio" in problem.fix
        assert engine.info is not None and not engine.info.audio
        assert engine._media_item(speech) is None  # a text note stands in for the clip
    finally:
        engine.close()


def test_weights_for_another_model_size_are_not_used(
    tiny_path: Path, speech: AttachmentPart, tmp_path: Path
) -> None:
    wider = AudioConfig(**{**SMALL.__dict__, "text_hidden_size": 48})
    path = tmp_path / "wider-audio.safetensors"
    path.write_bytes(safetensors_bytes({f"model.{k}": v for k, v in random_weights(wider, 1).items()}))
    engine = make_engine(tiny_path, [path, MMPROJ])
    try:
        assert engine.media_problem(speech) is None and engine._hearing.path == MMPROJ
    finally:
        engine.close()
    engine = make_engine(tiny_path, [path])
    try:
        problem = engine.media_problem(speech)
        assert problem is not None and "another model size" in problem.reason and "width 48" in problem.reason
    finally:
        engine.close()


def test_incomplete_weights_are_passed_over(tiny_path: Path, speech: AttachmentPart, tmp_path: Path) -> None:
    """An mmproj whose converter left out part of the tower (docs/audio.md) must not shadow good weights."""
    partial = {k: v for k, v in random_weights(SMALL, 2).items() if "conv_0.norm" not in k}
    path = tmp_path / "partial-audio.safetensors"
    path.write_bytes(safetensors_bytes({f"model.{k}": v for k, v in partial.items()}))
    engine = make_engine(tiny_path, [path, MMPROJ])
    try:
        assert engine.media_problem(speech) is None and engine._hearing.path == MMPROJ
    finally:
        engine.close()
    engine = make_engine(tiny_path, [path])
    try:
        problem = engine.media_problem(speech)
        assert problem is not None and "cannot be used" in problem.reason and "conv_0.norm" in problem.reason
        assert "g3chat models pull --audio" in problem.fix
    finally:
        engine.close()


def test_an_e4b_model_refuses_e2b_weights_of_the_same_width(
    tiny_path: Path, speech: AttachmentPart, tmp_path: Path
) -> None:
    """E2B and E4B share a width (2048): what the weights record about their source tells them apart."""
    e4b = with_metadata(
        tiny_path, tmp_path / "e4b.gguf", {"general.basename": "gemma", "general.finetune": "3n-E4B-it"}
    )
    tensors = {f"model.{k}": v for k, v in random_weights(SMALL, 1).items()}
    e2b_weights = tmp_path / "gemma-3n-E2B-it-audio.safetensors"  # as installed before provenance: the name
    e2b_weights.write_bytes(safetensors_bytes(tensors))
    e4b_weights = tmp_path / "e4b-audio.safetensors"
    e4b_weights.write_bytes(safetensors_bytes(tensors, metadata={"source": "google/gemma-3n-E4B-it@main"}))
    engine = make_engine(e4b, [e2b_weights])
    try:
        problem = engine.media_problem(speech)
        assert problem is not None and engine._media_item(speech) is None
        assert "gemma-3n-E2B-it-audio.safetensors (E2B)" in problem.reason and "E4B" in problem.reason
        assert problem.fix == "run 'g3chat models pull --audio e4b'" and "\n" not in problem.reason
    finally:
        engine.close()
    engine = make_engine(e4b, [e2b_weights, e4b_weights])
    try:
        assert engine.media_problem(speech) is None and engine._hearing.path == e4b_weights
    finally:
        engine.close()
    engine = make_engine(tiny_path, [e2b_weights])  # a model that does not say its size: by width
    try:
        assert engine.media_problem(speech) is None
    finally:
        engine.close()


def test_a_clip_is_laid_out_as_gemma3n_processor_does(
    hearing: LlamaCppEngine, speech: AttachmentPart
) -> None:
    """The chat template's ``<audio_soft_token>`` becomes Gemma3nProcessor's full audio sequence: a blank
    line, ``<start_of_audio>``, the soft tokens, ``<end_of_audio>`` and a blank line, then the text."""
    plan = hearing.plan([user("the keeper", [speech])])
    block = audio_block_text(SOFT)  # "\n\n<start_of_audio>" + soft tokens + "<end_of_audio>\n\n"
    text = f"<start_of_turn>user\n{block}the keeper<end_of_turn>\n<start_of_turn>model\n"
    want = [2, *hearing.llama.tokenize(text.encode(), add_bos=False, special=True)]
    assert as_soft_tokens(plan.tokens, plan.spans) == want
