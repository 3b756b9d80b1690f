"""The microphone through sounddevice (PortAudio): 16 kHz mono, live level, three ways to stop.

A recording stops when the caller sets its stop event (a key in the TUI, Ctrl+C in ``ask``), when the
time limit is reached, or, once speech has been heard, after a stretch of trailing silence (a simple
energy voice-activity detector that adapts to the room's noise floor). Levels are reported to a callback
about 20 times a second, so a UI can draw a meter and the elapsed time. A recording stopped by silence keeps
only :data:`KEEP_SILENCE_S` of it after the last loud block, and ``on_pause`` hears where that end would be
as soon as the silence begins (engine/listening.py reads the clip's end during the silence wait). Every
failure, from a missing PortAudio library to a device that stops delivering audio, is a
:class:`MicrophoneError` that says what to do.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from g3chat.core.errors import MicrophoneError

SAMPLE_RATE = 16_000
BLOCK_S = 0.05
# Silence kept after the last loud block of a recording stopped by silence. Word endings (a fading vowel, an
# unvoiced "s" or "t" release) fall under the -39 dBFS speech threshold for up to ~0.2 s; 0.3 s keeps them and
# leaves the rest of the silence wait (1.7 s of the 2 s the chat UI and `ask --mic` wait) to read the clip's
# end before the recording stops. The model reads 188 rows per window whatever the clip's length.
KEEP_SILENCE_S = 0.3
StopReason = Literal["key", "time", "silence"]

NO_PORTAUDIO = (
    "the microphone needs the PortAudio library, which is not installed: install it "
    "(Debian/Ubuntu: sudo apt install libportaudio2; Fedora: sudo dnf install portaudio; "
    "macOS: brew install portaudio) and try again"
)
NO_DEVICE = (
    "no microphone found (no audio input device): connect one, or check that the system sees it "
    "(Linux: arecord -l; macOS: System Settings > Sound > Input) and that g3chat may use it"
)


@dataclass(frozen=True)
class Level:
    """One meter reading: RMS level 0..1 (on a dB scale from -60 dBFS), and seconds recorded so far."""

    level: float
    elapsed_s: float
    speech: bool


@dataclass(frozen=True)
class Recording:
    samples: Any  # int16 numpy array, mono
    rate: int
    stopped_by: StopReason

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


def load_sounddevice() -> Any:
    """The sounddevice module, or a MicrophoneError explaining how to get PortAudio."""
    try:
        import sounddevice
    except OSError:
        raise MicrophoneError(NO_PORTAUDIO) from None
    except ImportError:
        raise MicrophoneError(
            "the microphone needs the sounddevice package: pip install sounddevice"
        ) from None
    return sounddevice


def input_device(sd: Any, device: int | str | None = None) -> dict[str, Any]:
    """The input device to record from, or a MicrophoneError when there is none."""
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError):
        raise MicrophoneError(NO_DEVICE) from None
    if not info or int(info.get("max_input_channels", 0)) < 1:
        raise MicrophoneError(NO_DEVICE)
    return dict(info)


def level_of(block: Any) -> float:
    """RMS of int16 samples mapped to 0..1 over -60..0 dBFS."""
    import numpy as np

    if len(block) == 0:
        return 0.0
    rms = float(np.sqrt(np.mean(np.square(block.astype(np.float32) / 32768.0))))
    if rms <= 1e-6:
        return 0.0
    return max(0.0, min(1.0, (20 * math.log10(rms) + 60) / 60))


class Recorder:
    """Records one clip. ``record()`` blocks; run it in a worker thread from a UI."""

    def __init__(
        self,
        *,
        max_seconds: float | None = 60.0,
        silence_s: float | None = 1.5,
        speech_level: float = 0.35,
        on_level: Callable[[Level], None] | None = None,
        on_block: Callable[[Any], None] | None = None,
        on_pause: Callable[[int | None], None] | None = None,
        keep_silence_s: float = KEEP_SILENCE_S,
        device: int | str | None = None,
        rate: int = SAMPLE_RATE,
    ) -> None:
        self.max_seconds = max_seconds
        self.silence_s = silence_s
        self.speech_level = speech_level  # 0.35 on the meter is about -39 dBFS
        self.on_level = on_level
        self.on_block = on_block  # each block of int16 samples kept, as it arrives (engine/listening.py)
        # when silence begins after speech: the length the clip would be trimmed to if the silence lasts
        # (after on_block's block); None when speech resumes
        self.on_pause = on_pause
        self.keep_silence_s = keep_silence_s
        self.device = device
        self.rate = rate

    def record(self, stop: threading.Event | None = None) -> Recording:
        import numpy as np

        sd = load_sounddevice()
        input_device(sd, self.device)
        stop = stop or threading.Event()
        blocks: queue.Queue[Any] = queue.Queue()
        problems: list[str] = []

        def callback(indata: Any, frames: int, when: Any, status: Any) -> None:
            if status and status.input_overflow:
                problems.append("input overflow")
            blocks.put(indata[:, 0].copy())

        chunks: list[Any] = []
        n = 0
        heard = False
        quiet_since: float | None = None
        trim_at = 0  # the samples kept if the silence that began lasts
        reason: StopReason = "key"
        block = int(self.rate * BLOCK_S)
        try:
            with sd.InputStream(
                samplerate=self.rate, channels=1, dtype="int16", blocksize=block, callback=callback,
                device=self.device,
            ):  # fmt: skip
                while True:
                    if stop.is_set():
                        reason = "key"
                        break
                    try:
                        data = blocks.get(timeout=2.0)
                    except queue.Empty:
                        raise MicrophoneError(
                            "the microphone stopped delivering audio: check that it is connected and not "
                            "used by another program"
                        ) from None
                    chunks.append(data)
                    if self.on_block is not None:
                        cap = len(data) if self.max_seconds is None else int(self.max_seconds * self.rate) - n
                        if cap > 0:
                            self.on_block(data[:cap])  # what the recording keeps, no more
                    n += len(data)
                    elapsed = n / self.rate
                    level = level_of(data)
                    speech = level >= self.speech_level
                    if self.on_level is not None:
                        self.on_level(Level(level, elapsed, speech))
                    if speech:
                        if quiet_since is not None and self.on_pause is not None:
                            self.on_pause(None)
                        heard, quiet_since = True, None
                    elif heard and quiet_since is None:
                        quiet_since = elapsed
                        trim_at = n - len(data) + int(self.keep_silence_s * self.rate)
                        if self.max_seconds is not None:
                            trim_at = min(trim_at, int(self.max_seconds * self.rate))
                        if self.on_pause is not None:
                            self.on_pause(trim_at)
                    if self.max_seconds is not None and elapsed >= self.max_seconds:
                        reason = "time"
                        break
                    silent_for = elapsed - quiet_since if quiet_since is not None else 0.0
                    if (
                        self.silence_s is not None
                        and quiet_since is not None
                        and silent_for >= self.silence_s
                    ):
                        reason = "silence"
                        break
        except sd.PortAudioError as exc:
            raise MicrophoneError(
                f"the microphone failed: {exc}; check that it is connected and not used by another program"
            ) from None
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        if self.max_seconds is not None:
            samples = samples[: int(self.max_seconds * self.rate)]
        if reason == "silence":
            samples = samples[:trim_at]
        return Recording(samples.astype(np.int16), self.rate, reason)


def record(seconds: float | None = None, **kwargs: Any) -> Recording:
    """Record until ``seconds`` pass (or trailing silence after speech, unless ``silence_s=None``)."""
    return Recorder(max_seconds=seconds, **kwargs).record()
