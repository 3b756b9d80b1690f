"""Gemma 3n's audio features: 16 kHz mono waveform -> 128-bin log-mel spectrogram.

A numpy re-implementation of transformers' ``Gemma3nAudioFeatureExtractor`` (the Universal Speech Model
front end), step for step so that the numbers match: 32 ms frames (512 samples) every 10 ms (160 samples),
HTK-style pre-emphasis (0.97) computed inside each frame from a 513-sample window, a periodic Hann window, a
1024-point FFT ("overdrive": twice the next power of two), the magnitude (not the power) spectrum, a
triangular HTK mel filter bank from 125 Hz to 7600 Hz without area normalization, and ``log(max(mel,
1e-5))``. The waveform is first zero-padded to a multiple of 128 samples and cut at 30 s, as the extractor's
defaults do; a frame counts as valid when its first sample is real audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

SAMPLE_RATE = 16_000
MAX_SAMPLES = 480_000  # 30 s: the model's audio window


@dataclass(frozen=True)
class MelFeatures:
    """A clip's log-mel frames [frames, mel_bins] (float32) and which frames hold real audio."""

    mel: np.ndarray
    valid: np.ndarray  # bool [frames]

    @property
    def n_frames(self) -> int:
        return int(self.mel.shape[0])


def mel_filter_bank(
    n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int, fft_length: int
) -> np.ndarray:
    """Triangular HTK mel filters [n_freqs, n_mels], unnormalized (as torchaudio's ``norm=None``)."""

    def hz_to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    bin_hz = np.arange(n_freqs, dtype=np.float32) * (sample_rate / fft_length)
    mel_points = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    hz_points = 700.0 * (10.0 ** (mel_points / 2595.0) - 1.0)
    widths = np.diff(hz_points)
    distance = hz_points[None, :] - bin_hz[:, None]  # [n_freqs, n_mels + 2]
    rising = -distance[:, :-2] / widths[:-1]
    falling = distance[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling))


@dataclass(frozen=True)
class FeatureExtractor:
    """The extractor's settings; the defaults are Gemma 3n's (its ``preprocessor_config.json``)."""

    sample_rate: int = SAMPLE_RATE
    n_mels: int = 128
    frame_length_ms: float = 32.0
    hop_length_ms: float = 10.0
    min_frequency: float = 125.0
    max_frequency: float = 7600.0
    preemphasis: float = 0.97
    mel_floor: float = 1e-5
    pad_to_multiple_of: int = 128
    max_samples: int = MAX_SAMPLES

    @property
    def frame_length(self) -> int:
        return round(self.sample_rate * self.frame_length_ms / 1000.0)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_length_ms / 1000.0)

    @property
    def fft_length(self) -> int:
        return 2 * 2 ** math.ceil(math.log2(self.frame_length))

    @cached_property
    def window(self) -> np.ndarray:
        n = np.arange(self.frame_length, dtype=np.float32)
        return (0.5 * (1 - np.cos(2 * np.pi * n / self.frame_length))).astype(np.float32)

    @cached_property
    def filters(self) -> np.ndarray:
        return mel_filter_bank(
            self.fft_length // 2 + 1,
            self.min_frequency,
            self.max_frequency,
            self.n_mels,
            self.sample_rate,
            self.fft_length,
        )

    def n_frames(self, n_samples: int) -> int:
        """Mel frames for a clip of ``n_samples`` (after padding and the 30 s cut)."""
        padded = self._padded_length(n_samples)
        return max(0, (padded - (self.frame_length + 1)) // self.hop_length + 1)

    def _padded_length(self, n_samples: int) -> int:
        n = min(n_samples, self.max_samples)
        multiple = self.pad_to_multiple_of
        return -(-n // multiple) * multiple if multiple else n

    def __call__(self, waveform: np.ndarray) -> MelFeatures:
        """Features of one mono clip at ``sample_rate`` (float samples in [-1, 1])."""
        audio = np.asarray(waveform, dtype=np.float32).reshape(-1)[: self.max_samples]
        n_real = audio.shape[0]
        padded = np.zeros(self._padded_length(n_real), dtype=np.float32)
        padded[:n_real] = audio
        n_frames = self.n_frames(n_real)
        if n_frames == 0:
            return MelFeatures(np.zeros((0, self.n_mels), np.float32), np.zeros(0, dtype=bool))
        valid = np.arange(n_frames) * self.hop_length < n_real
        return MelFeatures(self.frames(padded, n_frames), valid)

    def frames(self, signal: np.ndarray, n_frames: int) -> np.ndarray:
        """Log-mel rows [n_frames, n_mels] of the frames starting at 0, hop, 2 hop… of ``signal`` (float32,
        at least ``(n_frames - 1) * hop + frame_length + 1`` samples: each frame reads one sample more,
        for its pre-emphasis)."""
        size = self.frame_length + 1
        windows = np.lib.stride_tricks.as_strided(
            signal, shape=(n_frames, size), strides=(signal.strides[0] * self.hop_length, signal.strides[0])
        )
        # HTK pre-emphasis within each window: y[0] = x[0](1-a), y[i] = x[i] - a x[i-1].
        frames = np.empty((n_frames, self.frame_length), dtype=np.float32)
        frames[:, :1] = windows[:, :1] * (1.0 - self.preemphasis)
        frames[:, 1:] = windows[:, 1:-1] - self.preemphasis * windows[:, :-2]
        frames *= self.window
        magnitude = np.abs(np.fft.rfft(frames, n=self.fft_length, axis=-1))
        return np.log(np.maximum(magnitude @ self.filters, self.mel_floor)).astype(np.float32)


class MelStream:
    """:class:`FeatureExtractor` for a clip that arrives in pieces: each frame's row as soon as its 513
    samples are in, the rest (the last frames over the zero padding) at :meth:`finish`.

    Exact: the extractor neither normalizes nor windows over the whole clip. Its only whole-clip steps are
    the zero padding to a multiple of 128 samples and the 30 s cut, and a frame that reads padding starts
    less than 513 samples before the end: no frame that :meth:`push` returns reads beyond the samples given,
    so every row equals the whole clip's. Frame ``i`` is final once ``160 i + 513`` samples have arrived.
    """

    def __init__(self, extractor: FeatureExtractor | None = None) -> None:
        self.extractor = extractor or FeatureExtractor()
        self.n_samples = 0  # received so far
        self.n_frames = 0  # rows returned so far
        self._pending = np.zeros(0, dtype=np.float32)  # samples from the next frame's start on

    def push(self, samples: np.ndarray) -> np.ndarray:
        """The rows [k, n_mels] that the new samples completed (k may be 0)."""
        ex = self.extractor
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.n_samples + len(samples) > ex.max_samples:
            raise ValueError(f"a stream holds at most {ex.max_samples} samples (the audio window)")
        self.n_samples += len(samples)
        self._pending = np.concatenate([self._pending, samples])
        size = ex.frame_length + 1
        k = (len(self._pending) - size) // ex.hop_length + 1 if len(self._pending) >= size else 0
        return self._take(k)

    def finish(self) -> MelFeatures:
        """The last rows (over the zero padding) and the validity of every row of the clip."""
        ex = self.extractor
        total = ex.n_frames(self.n_samples)
        padded = ex._padded_length(self.n_samples) - self.n_frames * ex.hop_length
        if padded > len(self._pending):
            self._pending = np.pad(self._pending, (0, padded - len(self._pending)))
        rows = self._take(total - self.n_frames)
        valid = np.arange(total) * ex.hop_length < self.n_samples
        return MelFeatures(rows, valid)

    def _take(self, k: int) -> np.ndarray:
        ex = self.extractor
        if k <= 0:
            return np.zeros((0, ex.n_mels), np.float32)
        rows = ex.frames(np.ascontiguousarray(self._pending), k)
        self._pending = self._pending[k * ex.hop_length :]
        self.n_frames += k
        return rows


def extract_features(waveform: np.ndarray) -> MelFeatures:
    """Gemma 3n's log-mel features of one 16 kHz mono clip (at most 30 s are used)."""
    return FeatureExtractor()(waveform)
