"""The audio tower incrementally: chunk by chunk it gives the whole clip's features and soft tokens.

The reference is the whole-clip path that test_audio_encoder.py / test_audio_features.py check against
transformers (committed fixtures, seeded weights); one case compares with the transformers numbers directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.features import MelStream, extract_features
from g3chat.core.audio.streaming import StreamingEncoder, final_tokens
from tests.conftest import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "audio"
TOLERANCE = 1e-5  # the bound; the embeddings have unit RMS


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "features.npz") as data:
        return {k: data[k] for k in data.files}


def speech(clips: dict[str, np.ndarray]) -> np.ndarray:
    return clips["clip_speech_3s"].astype(np.float32) / 32768.0


def streamed(encoder: AudioEncoder, clip: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    stream = StreamingEncoder(encoder)
    rows, keep = [], []
    for start in range(0, len(clip), chunk):
        r, k = stream.push(clip[start : start + chunk])
        assert stream.n_tokens == final_tokens(stream.n_samples, encoder)  # as soon as final, not later
        rows.append(r)
        keep.append(k)
    r, k = stream.finish()
    return np.concatenate([*rows, r]), np.concatenate([*keep, k])


@pytest.mark.parametrize("chunk", [160, 777, 4096, 16_000])
@pytest.mark.parametrize("length", [513, 12_345, 30_000, 48_000])
def test_chunked_tokens_equal_the_whole_clip(encoder, clips, length: int, chunk: int) -> None:
    clip = speech(clips)[:length]
    features = extract_features(clip)
    want, want_keep = encoder(features.mel, features.valid)
    got, keep = streamed(encoder, clip, chunk)
    assert got.shape == want.shape and np.array_equal(keep, want_keep)
    assert float(np.abs(got - want).max()) <= TOLERANCE


def test_sample_by_sample_and_against_transformers(ref, encoder, clips) -> None:
    clip = speech(clips)
    got, keep = streamed(encoder, clip[:3000], 1)
    features = extract_features(clip[:3000])
    assert float(np.abs(got - encoder(features.mel, features.valid)[0]).max()) <= TOLERANCE
    got, keep = streamed(encoder, clip, 1000)
    assert keep.all()
    expected = ref["embedded_alone"]  # transformers' Gemma3nModel on the same clip and weights
    assert float(np.abs(got - expected).max()) <= 1e-4 * float(np.abs(expected).max())


def test_a_token_is_final_92_ms_after_its_start(encoder) -> None:
    """Soft token j (160 ms of audio) needs samples up to 2560 j + 1473: the mel frame, then two rows of
    look-ahead in each sub-sampling convolution. At the end of a clip at most one token is left."""
    stream = StreamingEncoder(encoder)
    noise = np.random.default_rng(3).normal(0, 0.1, 19_000).astype(np.float32)
    assert len(stream.push(noise[:1472])[0]) == 0
    assert len(stream.push(noise[1472:1473])[0]) == 1
    assert len(stream.push(noise[1473 : 2560 + 1472])[0]) == 0
    assert len(stream.push(noise[2560 + 1472 : 2560 * 5 + 1473])[0]) == 5  # tokens 1 to 5
    stream.push(noise[2560 * 5 + 1473 :])  # 19000 samples: 116 frames, 8 soft tokens in all
    assert stream.n_tokens == 7 and len(stream.finish()[0]) == 1
    with pytest.raises(ValueError):
        stream.push(noise[:10])


def test_mel_rows_stream_exactly(clips) -> None:
    """The extractor has no whole-clip step but the zero padding to 128 samples: rows are identical."""
    clip = clips["clip_odd_12345"].astype(np.float32) / 32768.0
    stream = MelStream()
    rows = [stream.push(clip[i : i + 333]) for i in range(0, len(clip), 333)]
    done = stream.finish()
    whole = extract_features(clip)
    assert np.array_equal(np.concatenate([*rows, done.mel]), whole.mel)
    assert np.array_equal(done.valid, whole.valid) and len(done.mel) == 1  # the frame over the padding
    assert np.abs(whole.mel - clips["mel_odd_12345"]).max() < 1e-3  # transformers' extractor
    with pytest.raises(ValueError):
        MelStream().push(np.zeros(480_001, np.float32))


@pytest.mark.parametrize("cut", [9_000, 24_321])
def test_a_fork_ends_the_clip_here_and_the_stream_goes_on(encoder, clips, cut: int) -> None:
    """What the listener reads ahead when silence begins: the fork's end is the clip cut at ``cut``, and
    the stream it came from still gives the whole clip."""
    clip = speech(clips)[:40_000]
    stream = StreamingEncoder(encoder)
    head, head_keep = stream.push(clip[:cut])
    fork = stream.fork()
    assert fork.encoder is encoder and fork.convs[0].weight is stream.convs[0].weight  # weights shared
    end, end_keep = fork.finish()
    rest, rest_keep = stream.push(clip[cut:])
    last, last_keep = stream.finish()
    for got, keep, part in (
        (np.concatenate([head, end]), np.concatenate([head_keep, end_keep]), clip[:cut]),
        (np.concatenate([head, rest, last]), np.concatenate([head_keep, rest_keep, last_keep]), clip),
    ):
        features = extract_features(part)
        want, want_keep = encoder(features.mel, features.valid)
        assert got.shape == want.shape and np.array_equal(keep, want_keep)
        assert float(np.abs(got - want).max()) <= TOLERANCE


@pytest.mark.parametrize(("cut", "end"), [(9_000, 9_001), (9_000, 24_321), (0, 4_000)])
def test_finish_takes_the_last_samples_in_one_pass(encoder, clips, cut: int, end: int) -> None:
    """``finish(samples)``: the clip's last samples and its end through the tower at once (the listener's
    read-ahead at the end of speech), the same rows as pushing them first."""
    clip = speech(clips)[:end]
    stream = StreamingEncoder(encoder)
    head, head_keep = stream.push(clip[:cut])
    passes: list[int] = []
    through = stream._rows

    def counted(*args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        passes.append(1)
        return through(*args, **kwargs)

    stream._rows = counted  # type: ignore[method-assign]
    tail, tail_keep = stream.finish(clip[cut:])
    assert len(passes) == 1
    features = extract_features(clip)
    want, want_keep = encoder(features.mel, features.valid)
    got, keep = np.concatenate([head, tail]), np.concatenate([head_keep, tail_keep])
    assert got.shape == want.shape and np.array_equal(keep, want_keep)
    assert float(np.abs(got - want).max()) <= TOLERANCE
