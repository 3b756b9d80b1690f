"""Reading a clip into the KV cache while it is made: a recording as it is recorded, a file as it is decoded.

Both go the same way (:func:`listen_along`): where the engine can listen (a local Gemma 3n that hears,
:func:`~g3chat.core.engine.listening.can_listen`), a :class:`~g3chat.core.engine.listening.Listener` starts
with a stand-in where the clip goes in the conversation the answer will continue, takes the samples as they
come, and reads the stored clip's end once it is stored; the answer's prompt then finds the clip in the cache
and evaluates only what follows it. If listening fails, a note says so and the clip is read with the prompt,
as without listening. A failure to make the clip (a corrupt file, a Ctrl+C) cancels the listener: the cache
is cut back to what it held before.

A file (:func:`hear_file`) is decoded block by block (:func:`~g3chat.core.media.audio.audio_blocks`) and
fed as it comes, as the stored WAV's 16-bit samples (the clip read is the clip stored: float samples give
rows up to 0.06 off the stored clip's on the tiny test model). It is read a window (30 s) at a time, each
window in one pass through the audio tower, while the decoder goes on with the next; the decoder waits while
two windows are still to be read, so the first window's rows are in the cache before the last block of a
long file is decoded, and a 30-minute file is not held twice in memory. Its stored WAV is the one
:func:`~g3chat.core.media.audio.attach_audio` stores (the same bytes and sha256).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from g3chat.core.errors import G3ChatError
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart, Message

# A file's samples are fed a second at a time, not as FFmpeg decodes them (an MP3 frame is ~420 samples at
# 16 kHz): each feed takes the GIL from the listener's thread and wakes it.
FEED_SAMPLES = 16_000
Conversation = Callable[[AttachmentPart], list[Message]]  # the messages with a part where the clip goes
Make = Callable[[Any], AttachmentPart]  # makes and stores the clip, feeding the listener (None: none)
Note = Callable[[str], None]


def listen_along(
    engine: Any,
    conversation: Conversation,
    make: Make,
    *,
    name: str,
    after: str,
    note: Note,
    whole_windows: bool = False,
) -> AttachmentPart:
    """``make(listener)`` with a listener reading what it feeds, where ``engine`` can listen (else
    ``make(None)``); ``after`` says, in the note when listening fails, when the clip is read instead.
    ``whole_windows``: the samples come faster than they are read (see ``Listener``)."""
    from g3chat.core.engine.listening import Listener, can_listen, live_part

    listener: Listener | None = None
    if can_listen(engine):
        live = live_part(name)
        listener = Listener(engine, conversation(live), live, whole_windows=whole_windows)
    try:
        part = make(listener)
    except BaseException:
        if listener is not None:
            listener.cancel()
        raise
    if listener is not None:
        try:
            listener.finish(part)
        except (G3ChatError, OSError, RuntimeError, ValueError) as exc:
            note(f"{after} ({exc})")
    return part


def hear_file(
    engine: Any,
    store: MediaStore,
    path: Path | str,
    conversation: Conversation,
    *,
    note: Note,
    blocks: Callable[[Path], Iterable[Any]] | None = None,
) -> AttachmentPart:
    """The audio file at ``path`` stored as a 16 kHz WAV part, read by ``engine`` while it is decoded where
    it can listen. ``blocks``: the decoder (:func:`~g3chat.core.media.audio.audio_blocks`; tests wrap it).
    MediaError for a file that cannot be decoded (the listener cancelled)."""
    import numpy as np

    from g3chat.core.media.audio import audio_blocks, audio_part

    path = Path(path).expanduser()
    decode = blocks or audio_blocks

    def make(listener: Any) -> AttachmentPart:
        pieces: list[Any] = []
        fed, unfed = 0, 0  # pieces fed so far, samples decoded since
        for block in decode(path):
            pieces.append(block)
            unfed += len(block)
            if listener is not None and unfed >= FEED_SAMPLES:
                feed(listener, pieces[fed:])
                fed, unfed = len(pieces), 0
        if listener is not None and unfed:
            feed(listener, pieces[fed:])
        return audio_part(store, np.concatenate(pieces), path.name)

    after = f"{path.name} is read with the prompt"
    return listen_along(
        engine, conversation, make, name=path.name, after=after, note=note, whole_windows=True
    )


def feed(listener: Any, pieces: list[Any]) -> None:
    """Feed the decoded ``pieces`` to ``listener`` as the stored WAV will read them back (16-bit), waiting
    while two windows are still to be read."""
    import numpy as np

    from g3chat.core.media.audio import pcm16

    listener.feed(pcm16(np.concatenate(pieces)), wait_below=2 * listener.hearing.window)
