"""``ask``'s attachments: files from ``--image/--audio/--video``, ``@path`` mentions in the prompt and a
recording from ``--mic``."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from g3chat.core.media.attach import AttachKind, AttachRequest, attach, clean_path
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart, Message, user

MIC_SILENCE_S = 2.0
MIC_DEFAULT_SECONDS = 30.0


def collect_files(
    store: MediaStore,
    images: Sequence[str],
    audio: Sequence[str],
    videos: Sequence[str],
    *,
    defer_audio: bool = False,
) -> list[AttachmentPart]:
    """Prepare and store each file in order (images, audio, video); MediaError names a bad one.
    ``defer_audio``: an audio file is only checked (it opens and has an audio stream) and a stand-in takes
    its place, for :func:`hear_files` to decode once the model is loaded (it reads the file as it is
    decoded)."""
    from g3chat.core.engine.listening import live_part
    from g3chat.core.media.audio import check_audio_file

    requests: list[tuple[AttachKind, str]] = [
        *(("image", p) for p in images),
        *(("audio", p) for p in audio),
        *(("video", p) for p in videos),
    ]
    parts: list[AttachmentPart] = []
    for kind, raw in requests:
        path = clean_path(raw)
        if kind == "audio" and defer_audio:
            check_audio_file(path)
            parts.append(replace(live_part(path.name), path=str(path)))
        else:
            parts.extend(attach(store, AttachRequest(kind, path)))
    return parts


def collect_mentions(
    store: MediaStore, text: str, roots_setting: str, max_chars: int
) -> list[AttachmentPart]:
    """The files ``@path`` mentions in ``text`` name (confined to the working folder and ``tools.roots``);
    a cut text file is said on stderr. MentionRefused (exit 2) when one lies outside."""
    from g3chat.core.mentions import attach_mentions, roots_for

    attached = attach_mentions(store, text, roots_for(roots_setting), max_chars=max_chars)
    for notice in attached.notices:
        sys.stderr.write(f"g3chat: note: {notice}\n")
    return attached.parts


def check_microphone() -> None:
    """MicrophoneError now (before a model is loaded) when there is no PortAudio or no input device."""
    from g3chat.core.media.mic import input_device, load_sounddevice

    input_device(load_sounddevice())


def record_heard(
    store: MediaStore,
    seconds: float | None,
    stop: threading.Event,
    engine: Any,
    before: list[Message],
    prompt: str,
    files: list[AttachmentPart],
) -> AttachmentPart:
    """:func:`record_mic`, the model reading the recording while it is made where it can (a local Gemma 3n
    that hears; see engine/listening.py): ``before`` and ``user(prompt, [*files, recording])`` are the
    conversation the answer will continue. Elsewhere, or if listening fails, it is read after the end."""
    from g3chat.core.engine.listen_along import listen_along

    def record(listener: Any) -> AttachmentPart:
        return record_mic(
            store, seconds, stop,
            on_block=listener.feed if listener else None,
            on_pause=listener.expect_end if listener else None,
        )  # fmt: skip

    return listen_along(
        engine, lambda live: [*before, user(prompt, [*files, live])], record,
        name="recording.wav", after="the recording is read after it ended", note=_note,
    )  # fmt: skip


def hear_files(
    store: MediaStore,
    engine: Any,
    before: list[Message],
    prompt: str,
    parts: list[AttachmentPart],
    later: Sequence[AttachmentPart] = (),
) -> list[AttachmentPart]:
    """``parts`` with each ``--audio`` stand-in (:func:`collect_files` with ``defer_audio``) replaced by its
    file, stored, in order: read by the model while it is decoded where it can listen (a local Gemma 3n
    that hears), the conversation being ``before`` and ``user(prompt, [*parts, *later])`` (``later``: a
    stand-in for the recording to come)."""
    from g3chat.core.engine.listen_along import hear_file
    from g3chat.core.engine.listening import is_live

    parts = list(parts)
    for index, part in enumerate(parts):
        if not is_live(part):
            continue

        def conversation(live: AttachmentPart, index: int = index) -> list[Message]:
            return [*before, user(prompt, [*parts[:index], live, *parts[index + 1 :], *later])]

        parts[index] = hear_file(engine, store, part.path, conversation, note=_note)
    return parts


def _note(text: str) -> None:
    sys.stderr.write(f"g3chat: note: {text}\n")


def record_mic(
    store: MediaStore,
    seconds: float | None,
    stop: threading.Event,
    on_block: Callable[[Any], None] | None = None,
    on_pause: Callable[[int | None], None] | None = None,
) -> AttachmentPart:
    """Record from the default input device until the limit, trailing silence, or Ctrl+C (``stop``)."""
    from datetime import datetime

    from g3chat.core.media.audio import audio_part
    from g3chat.core.media.mic import Level, Recorder
    from g3chat.core.media.preview import level_bar

    limit = seconds if seconds is not None else MIC_DEFAULT_SECONDS
    live = sys.stderr.isatty()
    history: list[float] = []

    def show(level: Level) -> None:
        history.append(level.level)
        if live:
            bar = level_bar(history[-30:])
            sys.stderr.write(f"\rg3chat: recording {level.elapsed_s:4.1f}s / {limit:.0f}s {bar:<30}")
            sys.stderr.flush()

    sys.stderr.write("g3chat: recording from the microphone (Ctrl+C to stop)…\n")
    recorder = Recorder(
        max_seconds=limit, silence_s=MIC_SILENCE_S, on_level=show, on_block=on_block, on_pause=on_pause
    )
    recording = recorder.record(stop)
    stop.clear()  # a Ctrl+C that ended the recording must not cancel the answer
    if live:
        sys.stderr.write("\n")
    name = f"recording-{datetime.now().strftime('%Y%m%d-%H%M%S')}.wav"
    part = audio_part(store, recording.samples, name, recording.rate)
    why = {"key": "stopped", "time": "time limit", "silence": "silence"}[recording.stopped_by]
    sys.stderr.write(f"g3chat: recorded {recording.duration_s:.1f}s ({why}) → {Path(part.path).name}\n")
    return part
