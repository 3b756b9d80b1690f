"""Gemma 3n's log-mel features against transformers' Gemma3nAudioFeatureExtractor (committed fixtures)."""

from __future__ import annotations

import numpy as np
import pytest

from g3chat.core.audio.features import FeatureExtractor, extract_features, mel_filter_bank
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "audio" / "features.npz"
CLIPS = ["speech_1s", "speech_3s", "silence_1s", "noise_1s", "odd_12345"]
TOLERANCE = 1e-4  # max abs difference in log-mel units (the target)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


def samples(ref: dict[str, np.ndarray], name: str) -> np.ndarray:
    return ref[f"clip_{name}"].astype(np.float32) / 32768.0


@pytest.mark.parametrize("name", CLIPS)
def test_features_match_transformers(ref: dict[str, np.ndarray], name: str) -> None:
    got = extract_features(samples(ref, name))
    expected = ref[f"mel_{name}"]
    assert got.mel.dtype == np.float32 and got.mel.shape == expected.shape
    assert float(np.abs(got.mel - expected).max()) <= TOLERANCE
    assert np.array_equal(got.valid, ref[f"mask_{name}"])


@pytest.mark.parametrize("seconds", [30, 35])
def test_long_clips_match_and_stop_at_30_seconds(ref: dict[str, np.ndarray], seconds: int) -> None:
    from tests.fixtures.make_audio_reference import long_clip

    got = extract_features(long_clip(ref["clip_speech_3s"], seconds))
    assert got.n_frames == int(ref[f"nframes_long_{seconds}s"]) == 2997  # 30 s: the model's window
    frames = ref[f"frames_long_{seconds}s"]
    assert float(np.abs(got.mel[frames] - ref[f"mel_long_{seconds}s"]).max()) <= TOLERANCE


def test_speech_is_not_silence(ref: dict[str, np.ndarray]) -> None:
    """The fixtures are what they claim: silence sits at the mel floor, speech well above it."""
    silence = extract_features(samples(ref, "silence_1s")).mel
    speech = extract_features(samples(ref, "speech_1s")).mel
    assert np.allclose(silence, np.log(1e-5))
    assert float(speech.max()) > 0.0


def test_frame_count_and_validity_follow_padding() -> None:
    fe = FeatureExtractor()
    assert (fe.frame_length, fe.hop_length, fe.fft_length) == (512, 160, 1024)
    assert fe.n_frames(16_000) == 97 and fe.n_frames(512) == 0 and fe.n_frames(600_000) == 2997
    clip = np.zeros(12_345, dtype=np.float32)
    feats = fe(clip)
    assert feats.n_frames == fe.n_frames(12_345) == 75
    assert feats.valid.all()  # a lone clip is never padded past a frame start
    assert fe(np.zeros(100, np.float32)).n_frames == 0


def test_mel_filters_are_triangles_inside_the_band() -> None:
    filters = mel_filter_bank(513, 125.0, 7600.0, 128, 16_000, 1024)
    assert filters.shape == (513, 128)
    assert filters.min() >= 0 and filters.max() <= 1.0
    hz = np.arange(513) * 16_000 / 1024
    assert not filters[hz < 125].any() and not filters[hz > 7600].any()
    assert (filters.sum(axis=0) > 0).all()  # every band sees some FFT bin
