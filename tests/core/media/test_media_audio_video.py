"""Audio files (decoded and resampled for real by FFmpeg through PyAV) and video frame sampling."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from g3chat.core.errors import MediaError
from g3chat.core.media.audio import attach_audio, decode_audio, read_wav, waveform
from g3chat.core.media.preview import audio_strip, level_bar
from g3chat.core.media.store import MediaStore
from g3chat.core.media.video import attach_video, sample_frames
from tests.fixtures import media_files as mf


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def _check_16k_mono(part, seconds: float) -> None:
    with wave.open(part.path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert abs(w.getnframes() / 16000 - seconds) < 0.1
    assert part.kind == "audio" and part.sample_rate == 16000 and part.mime == "audio/wav"
    assert abs(part.duration_s - seconds) < 0.1


def _dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_stereo_44k_wav_becomes_16k_mono(store: MediaStore, tmp_path: Path) -> None:
    src = mf.wav(tmp_path / "stereo.wav", mf.tone(1.0, 44100), 44100, channels=2)
    part = attach_audio(store, src)
    _check_16k_mono(part, 1.0)
    samples, rate = read_wav(part.path)
    assert rate == 16000 and abs(_dominant_hz(samples) - 440) < 5
    assert 0.3 < np.abs(samples).max() <= 0.55  # mixed to mono, not summed into clipping


def test_eight_bit_wav(store: MediaStore, tmp_path: Path) -> None:
    part = attach_audio(store, mf.wav(tmp_path / "u8.wav", mf.tone(0.5, 8000), 8000, width=1))
    _check_16k_mono(part, 0.5)
    assert abs(_dominant_hz(read_wav(part.path)[0]) - 440) < 5


@pytest.mark.parametrize(
    ("codec", "suffix", "rate"),
    [("flac", ".flac", 44100), ("libmp3lame", ".mp3", 44100), ("libopus", ".ogg", 48000)],
)
def test_compressed_formats(store: MediaStore, tmp_path: Path, codec: str, suffix: str, rate: int) -> None:
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder to make the test file")
    src = mf.encoded_audio(tmp_path / f"tone{suffix}", codec, mf.tone(1.0, rate), rate)
    part = attach_audio(store, src)
    _check_16k_mono(part, 1.0)
    assert abs(_dominant_hz(read_wav(part.path)[0]) - 440) < 5


def test_empty_wav(store: MediaStore, tmp_path: Path) -> None:
    src = mf.wav(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(MediaError, match=r"empty\.wav: contains no audio"):
        attach_audio(store, src)
    assert store.files() == []


def test_corrupt_and_non_audio(store: MediaStore, tmp_path: Path) -> None:
    corrupt = tmp_path / "noise.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" + bytes(range(256)) * 4)
    with pytest.raises(MediaError, match=r"noise\.wav: "):
        attach_audio(store, corrupt)
    text = tmp_path / "song.mp3"
    text.write_text("la la la\n" * 50)
    with pytest.raises(MediaError, match=r"song\.mp3: "):
        attach_audio(store, text)
    with pytest.raises(MediaError, match="is a directory"):
        decode_audio(tmp_path)
    assert store.files() == []


def test_waveform_and_strip(store: MediaStore, tmp_path: Path) -> None:
    samples = np.concatenate([np.zeros(8000), mf.tone(0.5, 16000, amp=0.9)])
    assert waveform(samples, 4)[:2] == [0.0, 0.0] and min(waveform(samples, 4)[2:]) > 0.8
    assert level_bar([0.0, 0.5, 1.0]) == " ▄█"
    part = attach_audio(store, mf.wav(tmp_path / "w.wav", samples, 16000))
    strip = audio_strip(part.path, 10)
    assert len(strip) == 10 and strip[:4] == "    " and strip[-1] == "▇"  # 0.9 of full scale


def test_video_frames_one_per_second(store: MediaStore, tmp_path: Path) -> None:
    colors = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]
    src = mf.color_video(tmp_path / "clip.mp4", 4, colors=colors)
    parts = attach_video(store, src)
    assert [p.timestamp for p in parts] == [0.0, 1.0, 2.0, 3.0]
    assert all(p.kind == "image" and p.source == "clip.mp4" for p in parts)
    assert parts[2].label == "clip.mp4 @ 0:02"
    for part, color in zip(parts, colors):
        with Image.open(part.path) as img:
            pixel = img.convert("RGB").getpixel((32, 24))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) < 40 for a, b in zip(pixel, color)), (part.timestamp, pixel)


def test_long_video_is_capped_and_spread(tmp_path: Path) -> None:
    src = mf.color_video(tmp_path / "long.mp4", 12, fps=2)
    frames = sample_frames(src, max_frames=4)
    assert [f.timestamp for f in frames] == [0.0, 3.0, 6.0, 9.0]


def test_not_a_video(store: MediaStore, tmp_path: Path) -> None:
    fake = tmp_path / "movie.mp4"
    fake.write_text("nothing to see")
    with pytest.raises(MediaError, match=r"movie\.mp4: "):
        attach_video(store, fake)
    assert store.files() == []
