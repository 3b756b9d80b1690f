"""The audio block in a prompt: its text, its embedding rows, and cutting a prompt into decode runs."""

from __future__ import annotations

import numpy as np
import pytest

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.layout import AudioTokens, audio_block_text, clip_rows, split_prompt
from g3chat.core.audio.weights import load_audio_weights
from g3chat.core.errors import InputError
from tests.conftest import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "audio"
T = AudioTokens(boa=63, eoa=72, soft=73)  # the tiny Gemma 3n's ids


@pytest.fixture(scope="module")
def tiny_encoder() -> AudioEncoder:
    base = AudioConfig(vocab_offset=72, soft_tokens=24)
    weights = load_audio_weights(FIXTURES / "tiny-gemma3n-mmproj.gguf", base)
    return AudioEncoder(weights.config, weights.tensors)


def test_audio_block_text_is_the_processors() -> None:
    text = audio_block_text(188)
    assert text.startswith("\n\n<start_of_audio><audio_soft_token>") and text.endswith("<end_of_audio>\n\n")
    assert text.count("<audio_soft_token>") == 188


def test_rows_match_what_gemma3n_model_scatters(tiny_encoder: AudioEncoder) -> None:
    """Soft tokens, padding to the fixed count and <end_of_audio> equal transformers' inputs_embeds there."""
    from tests.fixtures.tiny_gemma3n_reference import speech_clip

    rows = clip_rows(tiny_encoder, speech_clip(), eoa=T.eoa)
    with np.load(FIXTURES / "tiny_gemma3n.npz") as ref:
        expected = ref["audio_embeds"]
    assert rows.shape == (25, 32)
    assert np.abs(rows - expected).max() <= 1e-4 * np.abs(expected).max()
    # 19 real soft tokens, then 5 copies of the padding embedding
    assert np.array_equal(rows[19], rows[23]) and not np.array_equal(rows[18], rows[19])


def test_clip_length_limits(tiny_encoder: AudioEncoder) -> None:
    with pytest.raises(InputError, match="30 s"):
        clip_rows(tiny_encoder, np.zeros(480_001, np.float32))
    with pytest.raises(InputError, match="too short"):
        clip_rows(tiny_encoder, np.zeros(200, np.float32))


def test_split_prompt_alternates_tokens_and_rows() -> None:
    rows_a, rows_b = np.zeros((4, 8), np.float32), np.ones((4, 8), np.float32)
    ids = [2, 5, T.boa, T.soft, T.soft, T.soft, T.eoa, 9, T.boa, T.soft, T.soft, T.soft, T.eoa, 11, 12]
    runs = split_prompt(ids, [rows_a, rows_b], T)
    assert [(r.start, r.ids, r.rows is None) for r in runs] == [
        (0, (2, 5, T.boa), True),
        (3, (T.soft,) * 3 + (T.eoa,), False),
        (7, (9, T.boa), True),
        (9, (T.soft,) * 3 + (T.eoa,), False),
        (13, (11, 12), True),
    ]
    assert runs[1].rows is not None and runs[3].rows is not None
    assert np.array_equal(runs[1].rows, rows_a) and np.array_equal(runs[3].rows, rows_b)
    # resuming after a KV-cache prefix: only what is missing, the clip rows cut to match
    resumed = split_prompt(ids, [rows_a, rows_b], T, start=10)
    assert [(r.start, len(r.ids)) for r in resumed] == [(10, 3), (13, 2)]
    assert resumed[0].rows is not None and resumed[0].rows.shape == (3, 8)


def test_split_prompt_rejects_mismatches() -> None:
    ids = [2, T.soft, T.soft, T.eoa]
    with pytest.raises(InputError):
        split_prompt(ids, [], T)  # a placeholder without a clip
    with pytest.raises(InputError):
        split_prompt(ids, [np.zeros((5, 8), np.float32)], T)  # wrong length
    with pytest.raises(InputError):
        split_prompt([2, 3], [np.zeros((3, 8), np.float32)], T)  # a clip without a placeholder
    with pytest.raises(InputError):
        split_prompt([2, T.soft, T.soft, 7], [np.zeros((3, 8), np.float32)], T)  # no <end_of_audio>
