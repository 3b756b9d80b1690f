"""The numpy audio tower + embed_audio against transformers (committed fixtures, seeded weights)."""

from __future__ import annotations

import numpy as np
import pytest

from g3chat.core.audio import layers as L
from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.features import extract_features
from tests.conftest import FIXTURES as ALL_FIXTURES
from tests.fixtures.audio_synth import SMALL, random_weights

FIXTURES = ALL_FIXTURES / "audio"
RELATIVE = 1e-4  # max abs difference / max abs output; the target is 1e-3


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    with np.load(FIXTURES / "features.npz") as data:
        return data["clip_speech_3s"].astype(np.float32) / 32768.0


def close(got: np.ndarray, expected: np.ndarray) -> bool:
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max()) <= RELATIVE * float(np.abs(expected).max())


def test_encoder_and_embedder_match_transformers(ref, encoder, speech) -> None:
    feats = extract_features(speech)
    hidden, keep = encoder.encode(feats.mel, feats.valid)
    assert hidden.shape == (19, SMALL.hidden_size)  # 3 s -> 297 frames -> 75 -> 19 soft tokens
    assert close(hidden, ref["hidden_alone"])
    assert np.array_equal(keep, ref["keep_alone"]) and keep.all()
    embedded, _ = encoder(feats.mel, feats.valid)
    assert close(embedded, ref["embedded_alone"])
    assert np.allclose(np.sqrt(np.mean(embedded**2, axis=-1)), 1.0, atol=1e-3)  # scale-free final norm


def test_padded_frames_are_masked_as_in_a_batch(ref, encoder, speech) -> None:
    """The clip padded with a second of silence and those frames marked invalid (a batch's shorter clip)."""
    feats = extract_features(np.concatenate([speech, np.zeros(16_000, np.float32)]))
    valid = ref["valid_padded"]
    hidden, keep = encoder.encode(feats.mel, valid)
    assert np.array_equal(keep, ref["keep_padded"]) and not keep.all()
    assert close(hidden, ref["hidden_padded"])
    assert not hidden[~keep].any()
    # everything is causal in time: the padding does not change the clip's own soft tokens
    plain = extract_features(speech)
    alone, _ = encoder.encode(plain.mel, plain.valid)
    assert np.allclose(hidden[: len(alone)], alone, atol=1e-5)


def test_hard_embeddings_match_transformers(ref, encoder) -> None:
    ids = np.arange(SMALL.vocab_offset, SMALL.vocab_offset + SMALL.vocab_size)
    assert close(encoder.embed_hard(ids), ref["hard"])


def test_a_wrong_weight_breaks_parity(ref, speech) -> None:
    """The comparison is sharp: one perturbed norm scale in the last block moves the output visibly."""
    weights = random_weights(SMALL, int(ref["seed"]))
    weights["audio_tower.conformer.1.lconv1d.conv_norm.weight"] = (
        weights["audio_tower.conformer.1.lconv1d.conv_norm.weight"] * 1.01
    )
    feats = extract_features(speech)
    embedded, _ = AudioEncoder(SMALL, weights)(feats.mel, feats.valid)
    assert not close(embedded, ref["embedded_alone"])


def test_local_attention_window() -> None:
    """Each query sees itself and the 12 frames before it: 13 keys, none after it."""
    mask = L.local_causal_mask(12, 12, 0)
    assert mask.shape == (12, 24) and (mask.sum(axis=1) == 13).all()
    offsets = np.argwhere(mask)[:, 1] - 12 - np.argwhere(mask)[:, 0]  # key position - query position
    assert offsets.min() == -12 and offsets.max() == 0


def test_relative_shift_aligns_distances() -> None:
    w, f, context = 3, 4, 6
    bd = np.arange(w * f, dtype=np.float32).reshape(1, w, f) + 1
    shifted = L.relative_shift(bd, context)[0]
    for q in range(w):
        for c in range(context):
            expected = bd[0, q, c - q] if 0 <= c - q < f else 0
            assert shifted[q, c] == expected


def test_blocks_with_context_pads_and_windows() -> None:
    x = np.arange(1, 8, dtype=np.float32)  # T = 7
    blocks = L.blocks_with_context(x, n_blocks=3, block=3, left=2, right=0)
    assert blocks.tolist() == [[0, 0, 1, 2, 3], [2, 3, 4, 5, 6], [5, 6, 7, 0, 0]]
