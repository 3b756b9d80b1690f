"""Audio files with PyAV (FFmpeg): decode, mix to mono, resample to 16 kHz, store as 16-bit WAV.

WAV (any PCM width, including 8-bit), FLAC, MP3 and OGG (Vorbis/Opus) are read by FFmpeg's own decoders,
which PyAV's wheels carry; other formats FFmpeg knows work too. Channels are averaged into one. The stored
form is what a speech encoder takes: 16 kHz, mono, 16-bit PCM WAV. Empty, corrupt and non-audio files
are a one-line MediaError.
"""

from __future__ import annotations

import io
import itertools
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from g3chat.core.errors import MediaError
from g3chat.core.media.av_open import av_reason, open_container
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart

SAMPLE_RATE = 16_000
MAX_SECONDS = 30 * 60  # refuse to decode more than half an hour


def check_audio_file(path: Path | str) -> None:
    """MediaError now for a file that is no audio (missing, empty, not media, no audio stream); it decodes
    nothing, so a corrupt stream is found only when it is decoded."""
    import av

    path = Path(path).expanduser()
    try:
        with open_container(path, "an audio file") as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: has no audio stream")
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt audio ({av_reason(exc)})") from None


def audio_blocks(
    path: Path | str, rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS
) -> Iterator[Any]:
    """The file's audio as float32 mono samples in [-1, 1] at ``rate`` Hz, block by block as FFmpeg decodes
    it (numpy arrays of a few thousand samples), so a reader can start before the file is decoded. The
    errors come where they are found: a file that is no audio at once, a corrupt or too long one midway,
    one that held no samples after the last block."""
    import av

    path = Path(path).expanduser()
    container = open_container(path, "an audio file")
    total = 0
    try:
        with container:
            if not container.streams.audio:
                raise MediaError(f"{path}: has no audio stream")
            stream = container.streams.audio[0]
            # Keep the channels through resampling and average them here: FFmpeg's downmix adds +3 dB to
            # a centred (identical) stereo signal, averaging keeps its level.
            resampler = av.AudioResampler(format="fltp", rate=rate)
            for frame in container.decode(stream):
                blocks = [_mono(out) for out in resampler.resample(frame)]
                total += sum(len(b) for b in blocks)
                if total > max_seconds * rate:
                    raise MediaError(f"{path}: longer than {max_seconds / 60:.0f} minutes")
                yield from (b for b in blocks if len(b))
            for out in resampler.resample(None):  # what the resampler still holds
                block = _mono(out)
                total += len(block)
                if len(block):
                    yield block
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt audio ({av_reason(exc)})") from None
    if total == 0:
        raise MediaError(f"{path}: contains no audio")


def _mono(frame: Any) -> Any:
    import numpy as np

    return np.clip(frame.to_ndarray().mean(axis=0).astype(np.float32), -1.0, 1.0)


def decode_audio(path: Path | str, rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS) -> Any:
    """The file's audio as float32 mono samples in [-1, 1] at ``rate`` Hz (a numpy array): all of
    :func:`audio_blocks`."""
    import numpy as np

    return np.concatenate(list(audio_blocks(path, rate, max_seconds)))


def pcm16(samples: Any) -> Any:
    """Float samples in [-1, 1] as the stored WAV's 16-bit samples (int16 samples as they are)."""
    import numpy as np

    data = np.asarray(samples)
    if data.dtype != np.int16:
        data = (np.clip(data.astype(np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    return data


def wav_bytes(samples: Any, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit mono PCM WAV of float samples in [-1, 1] (or int16 samples)."""
    data = pcm16(samples)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data.reshape(-1).astype("<i2").tobytes())
    return out.getvalue()


def read_wav(path: Path | str) -> tuple[Any, int]:
    """A stored 16-bit mono WAV as (float32 samples, sample rate)."""
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, rate


def audio_part(
    store: MediaStore, samples: Any, name: str, rate: int = SAMPLE_RATE, **extra: Any
) -> AttachmentPart:
    data = wav_bytes(samples, rate)
    stored, sha = store.put(data, ".wav")
    return AttachmentPart(
        kind="audio",
        name=name,
        mime="audio/wav",
        path=str(stored),
        sha256=sha,
        size=len(data),
        sample_rate=rate,
        duration_s=round(len(samples) / rate, 3),
        **extra,
    )


def attach_audio(store: MediaStore, path: Path | str) -> AttachmentPart:
    path = Path(path).expanduser()
    return audio_part(store, decode_audio(path), path.name)


def waveform(samples: Any, columns: int) -> list[float]:
    """Peak level (0..1) of each of ``columns`` equal slices: the data behind a waveform strip."""
    import numpy as np

    data = np.abs(np.asarray(samples, dtype=np.float32).reshape(-1))
    if columns <= 0:
        return []
    if data.size == 0:
        return [0.0] * columns
    edges = np.linspace(0, data.size, columns + 1).astype(int)
    return [float(data[a:b].max()) if b > a else 0.0 for a, b in itertools.pairwise(edges)]
