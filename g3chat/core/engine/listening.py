"""Hearing while the user speaks: a recording read into the KV cache as it is recorded.

Reading a clip after the recording stops costs a 10 s question about 6 s on two cores (the encoder, then
192 prompt rows at ~50 a second) while the machine idled as the user spoke. A :class:`Listener` does that
work during the recording, on its own thread (the model's owner while it listens: nothing else may use the
engine until :meth:`Listener.finish` or :meth:`Listener.cancel` returns):

1. the prompt up to the clip's ``<start_of_audio>``, planned with a stand-in part (:func:`live_part`) where
   the recording will go, is evaluated as any prefill (the cached prefix kept);
2. samples fed from the recorder (:meth:`Listener.feed`, never blocking) are encoded incrementally
   (:class:`~g3chat.core.audio.streaming.StreamingEncoder`) and each batch of soft tokens that became final
   is decoded right after the last (llama.cpp embedding input). Whatever queued while a batch was being
   read is read next as one batch, so a slow machine reads fewer, larger batches;
3. at 30 s the window is closed (its padding rows and ``<end_of_audio>``) and the next one opened with the
   same tokens :class:`~g3chat.core.engine.hearing.Hearing` puts between windows: a long recording is laid
   out 30 s after 30 s, not in the equal windows of a file, since its length is unknown while it lasts;
4. when the recorder hears silence begin (:meth:`Listener.expect_end`: where a silence stop will trim the
   clip), the clip's end is read ahead during the silence wait: the samples up to that end, then, from a
   fork of the encoder's state, the last soft tokens, the padding rows and ``<end_of_audio>``, then the
   prompt's text after the clip. Samples past that end are held, not encoded. If speech resumes, the cache
   is cut back to the last real row and the held samples are read as usual; if the recording stops by
   silence, the clip is exactly what was read ahead and the answer evaluates one token;
5. :meth:`Listener.finish` closes the last window and relabels the clip's positions with the placeholder
   ids of the stored recording, and tells the hearing its layout. The next ``stream_chat`` with the stored
   part in place of the stand-in then finds the whole clip in the cache and evaluates only what follows.

:meth:`Listener.cancel` cuts the cache back to what it held before listening began (less what the prompt
did not share). Every shortcut is checked by the usual prefix matching: a prompt that differs (other text
before the clip, another clip) is evaluated as without listening.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from g3chat.core.engine.projector import placeholder_ids
from g3chat.core.errors import EngineError, InputError
from g3chat.core.types import AttachmentPart, Message

_END, _CANCEL, _EXPECT = "end", "cancel", "expect"
# Rows read ahead between looks at the queue: speech that resumes waits for at most one such batch
# (~0.6 s at E2B's ~50 rows a second on two cores) before the read-ahead is cut back.
AHEAD_BATCH = 32
# Samples read at a time at least (0.5 s): each read streams the tower's weights (2.7 GB for E2B) and the
# model's through memory once, whatever the number of rows; fewer, larger reads keep up on two cores.
READ_AT_LEAST = 8_000


def can_listen(engine: Any) -> bool:
    """Whether ``engine`` can read a recording while it is made: a local Gemma 3n model that hears."""
    hearing = getattr(engine, "_hearing", None)
    return hearing is not None and hearing.ready and getattr(engine, "_kv", None) is not None


def live_part(name: str = "recording.wav") -> AttachmentPart:
    """A stand-in for a recording still in progress, to put in the message where the recording will go."""
    return AttachmentPart(
        kind="audio", name=name, mime="audio/wav", path="", sha256=f"live-{uuid.uuid4().hex}", size=0,
        sample_rate=16_000,
    )  # fmt: skip


@dataclass
class _Window:
    start: int  # samples
    position: int  # of its first row in the cache
    rows: list[np.ndarray]


@dataclass
class _Ahead:
    """The clip's end read ahead at ``end`` samples, and what to restore when speech resumes."""

    end: int
    position: int  # the cache's length before it
    ids: int
    rows_read: int
    n_rows: int  # the window's row batches before it
    steps: Iterator[bool]
    done: bool = False


class Listener:
    """Reads one recording into the engine's cache while it is made; see the module docstring."""

    def __init__(
        self, engine: Any, messages: Sequence[Message], live: AttachmentPart, *, read_ahead: bool = True
    ) -> None:
        """Start listening: ``live`` (from :func:`live_part`) stands where the recording goes in
        ``messages`` (a ``LlamaCppEngine``'s conversation). EngineError when the model cannot hear.
        ``read_ahead=False``: an expected end only holds back the samples past it (bench/)."""
        if not can_listen(engine):
            raise EngineError("this model cannot hear audio")
        self.engine, self.hearing, self.live = engine, engine._hearing, live
        self.reads_ahead = read_ahead
        self.messages = list(messages)
        self.n_samples = 0
        self.rows_read = 0  # soft-token rows in the cache so far
        self.error: BaseException | None = None
        self._kept: int | None = None  # cache length before listening, as far as the prompt shares it
        self._windows: list[_Window] = []
        self._stream: Any = None
        self._ids = 0
        self._tail: list[int] = []  # the prompt's tokens right after the clip
        self._end_at: int | None = None  # where the recording ends if the silence that began lasts
        self._held: list[np.ndarray] = []  # samples past it
        self._ahead: _Ahead | None = None
        self.read_ahead = 0  # positions read ahead of the end (rows and text), kept so far
        self.cut_back = 0  # read-aheads cut back because speech resumed
        self.ahead_done = threading.Event()  # the end is read ahead up to the prompt's last token
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="g3chat-listen", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------- the caller

    def feed(self, samples: Any) -> None:
        """Queue recorded samples: int16, or float in [-1, 1]; 16 kHz mono."""
        block = np.asarray(samples)
        if block.dtype == np.int16:
            block = block.astype(np.float32) / 32768.0  # as the stored WAV is read back
        self._queue.put(np.asarray(block, dtype=np.float32).reshape(-1))

    def expect_end(self, n_samples: int | None) -> None:
        """The recording ends at ``n_samples`` if it stops now (the recorder's ``on_pause``: silence began);
        None: it goes on (speech resumed). Queued after the blocks fed so far."""
        self._queue.put((_EXPECT, n_samples))

    def finish(self, part: AttachmentPart) -> None:
        """Wait until the whole recording, stored as ``part``, is read (raises what went wrong)."""
        self._queue.put((_END, part))
        self._thread.join()
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        """Drop the recording: the cache is cut back to what it held before listening."""
        self._queue.put((_CANCEL, None))
        self._thread.join()

    # ------------------------------------------------------------------------------- engine thread

    def _run(self) -> None:
        self._guard(self._begin)
        pending: list[np.ndarray] = []  # samples to read, up to the expected end
        control: tuple[str, Any] | None = None
        while control is None:
            ahead = self._ahead
            try:  # while the end is read ahead, a batch at a time between looks at the queue
                item = self._queue.get(block=ahead is None or ahead.done or self.error is not None)
            except queue.Empty:
                assert ahead is not None
                self._guard(self._step, ahead)
                continue
            while True:  # what queued meanwhile is read with it
                if isinstance(item, tuple) and item[0] == _EXPECT:
                    pending = self._guard(self._expect, item[1], pending) or []
                elif isinstance(item, tuple):
                    control = item
                    break
                else:
                    self._take(item, pending)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if control is not None and control[0] == _CANCEL:
                break
            n_pending = sum(len(p) for p in pending)
            at_end = self._end_at is not None and self.n_samples + n_pending >= self._end_at
            if pending and (control is not None or n_pending >= READ_AT_LEAST or at_end):
                self._guard(self._read, np.concatenate(pending))
                pending = []
            if control is None and at_end and self._ahead is None and self.reads_ahead and self.error is None:
                self._guard(self._read_ahead)
        kind, part = control
        if kind == _END and self.error is None:
            self._guard(self._end, part)
            if self.error is None:
                return
        self._discard()

    def _guard(self, step: Any, *args: Any) -> Any:
        """Run one step of the work unless an earlier one failed; a failure is kept for finish()."""
        if self.error is not None:
            return None
        try:
            return step(*args)
        except BaseException as exc:
            self.error = exc
            return None

    # ----------------------------------------------------------------------- the end, read ahead

    def _take(self, block: np.ndarray, pending: list[np.ndarray]) -> None:
        """Queue ``block`` for reading, holding back what lies past the expected end."""
        room = len(block)
        if self._end_at is not None:
            room = max(0, min(room, self._end_at - self.n_samples - sum(len(p) for p in pending)))
        if room:
            pending.append(block[:room])
        if room < len(block):
            self._held.append(block[room:])

    def _expect(self, end: int | None, pending: list[np.ndarray]) -> list[np.ndarray]:
        self._cut_back()
        samples, self._held = [*pending, *self._held], []
        self._end_at = end if end is not None and end >= self.n_samples else None
        again: list[np.ndarray] = []
        for block in samples:
            self._take(block, again)
        return again

    def _read_ahead(self) -> None:
        llm = self.engine.llama
        window = self._windows[-1]
        self._ahead = _Ahead(
            self.n_samples, llm.n_tokens, self._ids, self.rows_read, len(window.rows), self._ahead_steps()
        )

    def _ahead_steps(self) -> Iterator[bool]:
        rows = self._closing_rows(self._stream.fork())  # the real stream can still go on
        for start in range(0, len(rows), AHEAD_BATCH):
            batch = rows[start : start + AHEAD_BATCH]
            self._decode(batch)
            self.read_ahead += len(batch)
            yield True
        for start in range(0, len(self._tail), AHEAD_BATCH):
            text = self._tail[start : start + AHEAD_BATCH]
            self.engine._kv.decode(text, all_logits=False)
            self.read_ahead += len(text)
            yield True

    def _step(self, ahead: _Ahead) -> None:
        if not next(ahead.steps, False):
            ahead.done = True
            self.ahead_done.set()

    def _cut_back(self) -> None:
        """Speech resumed: back to the last real row (the encoder's own state never went past it)."""
        from g3chat.core.engine.kv import KVSession

        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        self.cut_back += 1
        self.read_ahead = 0
        self.ahead_done.clear()
        if not KVSession(self.engine.llama).truncate(ahead.position):
            raise EngineError("the cache could not be cut back to the recording's last row")
        del self._windows[-1].rows[ahead.n_rows :]
        self._ids, self.rows_read = ahead.ids, ahead.rows_read

    # -------------------------------------------------------------------------------- the reading

    def _begin(self) -> None:
        """Evaluate the prompt up to the clip's ``<start_of_audio>``."""
        from g3chat.core.engine.llama import PromptPlan

        engine, hearing = self.engine, self.hearing
        hearing.layouts[self.live.sha256] = ((0, hearing.window),)
        try:
            plan = engine.plan(self.messages)
        finally:
            del hearing.layouts[self.live.sha256]
        live = self.live.sha256
        start = next(
            (s for s, c in plan.media if getattr(getattr(c, "part", None), "sha256", 0) == live), None
        )
        if start is None:
            raise InputError("the recording's stand-in is not in the prompt")
        later = [m[0] for m in plan.media if m[0] > start]
        clip_end = start + next(c for s, c in plan.media if s == start).n_tokens
        self._tail = plan.tokens[clip_end : min(later, default=len(plan.tokens))]
        media = [m for m in plan.media if m[0] < start]
        prefix = PromptPlan(plan.tokens[:start], media, plan.items, plan.preamble)
        self._kept = engine._kv.common_prefix(prefix.tokens)
        for _ in engine._prefill(prefix, None):
            pass
        self._open(0)

    def _open(self, start: int) -> None:
        from g3chat.core.audio.streaming import StreamingEncoder

        if self._windows:  # the blank lines after one audio block and <start_of_audio> of the next
            self.engine._kv.decode([*self.hearing.between, self.hearing.boa], all_logits=False)
        self._windows.append(_Window(start, self.engine.llama.n_tokens, []))
        self._stream = StreamingEncoder(self.hearing.encoder())

    def _read(self, samples: np.ndarray) -> None:
        limit = self.hearing.window
        while len(samples):
            window = self._windows[-1]
            room = window.start + limit - self.n_samples
            if room == 0:
                self._close()
                self._open(self.n_samples)
                continue
            soft, keep = self._stream.push(samples[:room])
            self.n_samples += min(room, len(samples))
            samples = samples[room:]
            self._decode(np.where(keep[:, None], soft, self._filler()[0]))

    def _close(self) -> None:
        self._decode(self._closing_rows(self._stream))

    def _closing_rows(self, stream: Any) -> np.ndarray:
        """The window's last soft tokens, its padding rows and ``<end_of_audio>``."""
        from g3chat.core.engine.hearing import MIN_SAMPLES

        window = self._windows[-1]
        rows: list[np.ndarray] = []
        padding, end = self._filler()
        short = MIN_SAMPLES - (self.n_samples - window.start)
        if short > 0:  # as Hearing.rows pads a short clip
            soft, keep = stream.push(np.zeros(short, np.float32))
            rows.append(np.where(keep[:, None], soft, padding))
        soft, keep = stream.finish()
        n_pad = self.hearing.config.soft_tokens - stream.n_tokens
        if n_pad < 0:
            raise InputError("the window holds more soft tokens than the model's audio window")
        rows += [np.where(keep[:, None], soft, padding), np.broadcast_to(padding, (n_pad, padding.shape[0]))]
        return np.concatenate([*rows, end[None, :]])

    def _decode(self, rows: np.ndarray) -> None:
        from g3chat.core.engine.embeddings import decode_embeddings

        if len(rows) == 0:
            return
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._ids += len(rows)  # stand-in ids until finish() relabels them
        ids = placeholder_ids(f"{self.live.sha256}|{self._ids}", len(rows))
        decode_embeddings(self.engine.llama, rows, ids=ids)
        self._windows[-1].rows.append(rows)
        self.rows_read += len(rows)

    def _filler(self) -> tuple[np.ndarray, np.ndarray]:
        from g3chat.core.audio.layout import filler_rows

        return filler_rows(self.hearing.encoder(), self.hearing.eoa)

    def _end(self, part: AttachmentPart) -> None:
        hearing, llm = self.hearing, self.engine.llama
        n_samples = hearing._n_samples(part)
        if n_samples != self.n_samples:
            self._cut_back()  # not the clip read ahead: stopped another way, or not trimmed
            if self._held and n_samples > self.n_samples:
                self._read(np.concatenate(self._held)[: n_samples - self.n_samples])
        if self._ahead is not None:
            for _ in self._ahead.steps:  # what is left of the end read ahead
                pass
        else:
            self._close()
        layout: list[tuple[int, int]] = []
        for i, window in enumerate(self._windows):
            end = self._windows[i + 1].start if i + 1 < len(self._windows) else self.n_samples
            layout.append((window.start, end))
        if hearing._n_samples(part) != self.n_samples:
            raise InputError(f"{part.name} is not the recording that was read ({self.n_samples} samples)")
        n_rows = hearing.config.soft_tokens + 1
        for window, span in zip(self._windows, layout):
            ids = placeholder_ids(f"{hearing.key}|{part.sha256}|{span[0]}:{span[1]}", n_rows)
            llm.input_ids[window.position : window.position + n_rows] = ids
            hearing.remember(part.sha256, span, np.concatenate(window.rows))
        hearing.layouts[part.sha256] = tuple(layout)

    def _discard(self) -> None:
        from g3chat.core.engine.kv import KVSession

        if self._kept is not None and self.engine._llm is not None:
            KVSession(self.engine.llama).truncate(self._kept)
