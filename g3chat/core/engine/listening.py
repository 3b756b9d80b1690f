"""Hearing while the user speaks: a recording read into the KV cache as it is recorded.

Reading a clip after the recording stops costs a 10 s question about 6 s on two cores (the encoder, then
192 prompt rows at ~50 a second) while the machine idled as the user spoke. A :class:`Listener` does that
work during the recording, on its own thread (the model's owner while it listens: nothing else may use the
engine until :meth:`Listener.finish` or :meth:`Listener.cancel` returns):

1. the prompt up to the clip's ``<start_of_audio>``, planned with a stand-in part (:func:`live_part`) where
   the recording will go, is evaluated as any prefill (the cached prefix kept);
2. samples fed from the recorder (:meth:`Listener.feed`, never blocking; a file's decoder passes
   ``wait_below`` and waits while two windows are unread, see engine/listen_along.py) are encoded
   incrementally (:class:`~g3chat.core.audio.streaming.StreamingEncoder`) and each batch of soft tokens that
   became final is decoded right after the last (llama.cpp embedding input). Whatever queued while a batch
   was being read is read next as one batch, so a slow machine reads fewer, larger batches; a file's
   samples (``whole_windows``) are read a window at a time;
3. at 30 s the window is closed (its padding rows and ``<end_of_audio>``) and the next one opened with the
   same tokens :class:`~g3chat.core.engine.hearing.Hearing` puts between windows: a long recording is laid
   out 30 s after 30 s, the last window holding the rest, as every clip is (engine/hearing.py's
   ``windows``: the layout depends only on the length, which is unknown while the recording lasts);
4. when the recorder hears silence begin (:meth:`Listener.expect_end`: where a silence stop will trim the
   clip), the clip's end is read ahead during the silence wait: once the samples up to that end are in, a
   fork of the encoder's state takes them and the end in one pass through the tower (each pass streams all
   of its weights), giving the last soft tokens, then the padding rows and ``<end_of_audio>``, then the
   prompt's text after the clip. Samples past that end are held, not encoded. If speech resumes, the cache
   is cut back to the last row the encoder's own state reached and the samples the fork took are read
   again with the held ones; if the recording stops by silence, the clip is exactly what was read ahead and
   the answer evaluates one token;
5. :meth:`Listener.finish` closes the last window and relabels the clip's positions with the placeholder
   ids of the stored recording. The next ``stream_chat`` with the stored
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

from g3chat.core.engine.hearing import LIVE
from g3chat.core.engine.listening_windows import WindowReader
from g3chat.core.errors import EngineError
from g3chat.core.types import AttachmentPart, Message

_END, _CANCEL, _EXPECT = "end", "cancel", "expect"
_NONE = np.zeros(0, np.float32)
# Rows read ahead between looks at the queue: speech that resumes waits for at most one such batch (~0.9 s
# at E2B's ~70 rows a second on two cores; the held samples are then read in one go) before the read-ahead
# is cut back. Smaller batches evaluate fewer rows a second. At the end of the clip there is nothing to
# look out for: the rest is read at once.
AHEAD_BATCH = 64
AT_ONCE = 1 << 30
# Samples read at a time at least (1 s): each read streams the tower's weights (2.7 GB for E2B) and the
# model's through memory once, whatever the number of rows (E2B on two cores: ~0.2 s of a read's ~0.35 s
# encoding). At 0.5 s a read the listener used ~95% of real time there, at 1 s ~60%.
READ_AT_LEAST = 16_000


def can_listen(engine: Any) -> bool:
    """Whether ``engine`` can read a recording while it is made: a local Gemma 3n model that hears."""
    hearing = getattr(engine, "_hearing", None)
    return hearing is not None and hearing.ready and getattr(engine, "_kv", None) is not None


def live_part(name: str = "recording.wav") -> AttachmentPart:
    """A stand-in for a recording still in progress, to put in the message where the recording will go."""
    return AttachmentPart(
        kind="audio", name=name, mime="audio/wav", path="", sha256=f"{LIVE}{uuid.uuid4().hex}", size=0,
        sample_rate=16_000,
    )  # fmt: skip


def is_live(part: AttachmentPart) -> bool:
    """Whether ``part`` is a :func:`live_part` stand-in."""
    return part.sha256.startswith(LIVE)


@dataclass
class _Ahead:
    """The clip's end read ahead at ``end`` samples, and what to restore when speech resumes."""

    end: int
    samples: np.ndarray  # the clip's last samples, read by the fork only (given back if speech resumes)
    position: int  # the cache's length before it
    ids: int
    rows_read: int
    n_rows: int  # the window's row batches before it
    steps: Iterator[bool]
    done: bool = False


class Listener(WindowReader):
    """Reads one recording into the engine's cache while it is made; see the module docstring."""

    def __init__(
        self,
        engine: Any,
        messages: Sequence[Message],
        live: AttachmentPart,
        *,
        read_ahead: bool = True,
        whole_windows: bool = False,
    ) -> None:
        """Start listening: ``live`` (from :func:`live_part`) stands where the recording goes in
        ``messages`` (a ``LlamaCppEngine``'s conversation). EngineError when the model cannot hear.
        ``read_ahead=False``: an expected end only holds back the samples past it (bench/).
        ``whole_windows``: samples that come faster than they are read (a file's decoder) are read a
        window at a time, one pass through the tower each, rather than as they come."""
        if not can_listen(engine):
            raise EngineError("this model cannot hear audio")
        super().__init__(engine, messages, live)
        self.reads_ahead = read_ahead
        self.whole_windows = whole_windows
        self.error: BaseException | None = None
        self._end_at: int | None = None  # where the recording ends if the silence that began lasts
        self._held: list[np.ndarray] = []  # samples past it
        self._ahead: _Ahead | None = None
        self.read_ahead = 0  # positions read ahead of the end (rows and text), kept so far
        self.cut_back = 0  # read-aheads cut back because speech resumed
        self.ahead_done = threading.Event()  # the end is read ahead up to the prompt's last token
        self._queue: queue.Queue[Any] = queue.Queue()
        self._fed = 0  # samples fed so far
        self._room = threading.Condition()  # told after each read, for feed(wait_below=...)
        self._thread = threading.Thread(target=self._run, name="g3chat-listen", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------- the caller

    def feed(self, samples: Any, *, wait_below: int | None = None) -> None:
        """Queue recorded samples: int16, or float in [-1, 1]; 16 kHz mono. Never blocks, unless
        ``wait_below`` is given (a file's decoder, never the recorder): then it first waits until fewer
        than that many samples fed before are still to be read, so a long file is not decoded far ahead
        of the reading (nor held twice in memory)."""
        block = np.asarray(samples)
        if block.dtype == np.int16:
            block = block.astype(np.float32) / 32768.0  # as the stored WAV is read back
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if wait_below is not None:
            # what queued is read from READ_AT_LEAST on, or once it fills the window
            wait_below = max(wait_below, 2 * (self.hearing.window if self.whole_windows else READ_AT_LEAST))
            with self._room:
                self._room.wait_for(lambda: self._unread() < wait_below or not self._thread.is_alive())
        self._fed += len(block)
        self._queue.put(block)

    def _unread(self) -> int:
        """Samples fed but neither read nor held past the expected end (nor to be read: it failed)."""
        if self.error is not None:
            return 0
        return self._fed - self._through() - sum(len(h) for h in self._held)

    def _through(self) -> int:
        """Samples read so far, counting those the end read ahead took."""
        return self.n_samples + (len(self._ahead.samples) if self._ahead is not None else 0)

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
        try:
            self._listen()
        finally:
            self._tell()

    def _tell(self) -> None:
        with self._room:
            self._room.notify_all()

    def _listen(self) -> None:
        self._guard(self._begin, self.messages)
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
            at_end = self._end_at is not None and self._through() + n_pending >= self._end_at
            ahead_now = control is None and at_end and self._ahead is None and self.reads_ahead
            if pending and not ahead_now and control is None:
                pending = self._guard(self._read_some, pending, n_pending, at_end) or []
            if ahead_now:  # the samples up to the end go through the fork with the end, in one pass
                self._guard(self._read_ahead, np.concatenate(pending) if pending else _NONE)
                pending = []
            self._tell()  # fewer samples unread, or held, or failed
        kind, part = control
        if kind == _END and self.error is None:
            self._guard(self._end, part, np.concatenate(pending) if pending else _NONE)
            if self.error is None:
                return
        self._discard()

    def _read_some(self, pending: list[np.ndarray], n_pending: int, at_end: bool) -> list[np.ndarray]:
        """Read what is pending if it is enough (READ_AT_LEAST, or a window that more samples follow);
        return what is left pending."""
        if self.whole_windows and not at_end:
            room = self._window_room()
            if n_pending <= room:
                return pending  # until the window is full and a sample more has come
            samples = np.concatenate(pending)
            cut = room or len(samples)  # (a full window is closed as soon as more comes, so room > 0)
            self._read(samples[:cut], more=True)
            return [samples[cut:]] if cut < len(samples) else []
        if n_pending >= READ_AT_LEAST or at_end:
            self._read(np.concatenate(pending))
            return []
        return pending

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
            room = max(0, min(room, self._end_at - self._through() - sum(len(p) for p in pending)))
        if room:
            pending.append(block[:room])
        if room < len(block):
            self._held.append(block[room:])

    def _expect(self, end: int | None, pending: list[np.ndarray]) -> list[np.ndarray]:
        back = self._cut_back()
        samples, self._held = [*back, *pending, *self._held], []
        self._end_at = end if end is not None and end >= self.n_samples else None
        again: list[np.ndarray] = []
        for block in samples:
            self._take(block, again)
        return again

    def _read_ahead(self, samples: np.ndarray, batch: int = AHEAD_BATCH) -> None:
        """Read the clip's end as if it came after ``samples``: the rows of the samples not read yet and of
        the end, from a fork of the encoder's state (the real stream can still go on), then the prompt,
        ``batch`` positions at a time. Windows that the samples fill are read as usual."""
        samples = self._last_window(samples)
        llm, window = self.engine.llama, self._windows[-1]
        self._ahead = _Ahead(
            self.n_samples + len(samples), samples, llm.n_tokens, self._ids, self.rows_read,
            len(window.rows), self._ahead_steps(samples, batch),
        )  # fmt: skip

    def _ahead_steps(self, samples: np.ndarray, size: int) -> Iterator[bool]:
        rows = self._closing_rows(self._stream.fork(), samples)
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            self._decode(batch)
            self.read_ahead += len(batch)
            yield True
        # all but the prompt's last token: the answer evaluates that one for its logits, and a cache that
        # already held it would have to be cut back by one position first (slow in llama.cpp: seconds)
        tail = self._tail[:-1]
        for start in range(0, len(tail), size):
            text = tail[start : start + size]
            self.engine._kv.decode(text, all_logits=False)
            self.read_ahead += len(text)
            yield True

    def _step(self, ahead: _Ahead) -> None:
        if not next(ahead.steps, False):
            ahead.done = True
            self.ahead_done.set()

    def _cut_back(self) -> list[np.ndarray]:
        """Speech resumed: back to the last row the encoder's own state reached (it never went past it);
        returns the samples after it that the read-ahead took, to be read again."""
        from g3chat.core.engine.kv import KVSession

        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return []
        self.cut_back += 1
        self.read_ahead = 0
        self.ahead_done.clear()
        if not KVSession(self.engine.llama).truncate(ahead.position):
            raise EngineError("the cache could not be cut back to the recording's last row")
        del self._windows[-1].rows[ahead.n_rows :]
        self._ids, self.rows_read = ahead.ids, ahead.rows_read
        return [ahead.samples] if len(ahead.samples) else []

    # -------------------------------------------------------------------------------- the reading

    def _end(self, part: AttachmentPart, pending: np.ndarray) -> None:
        """The clip is stored as ``part``: read the rest of it (``pending``, then what was held) and its
        end, unless that is what was read ahead."""
        n_samples = self.hearing._n_samples(part)
        if self._ahead is not None and self._ahead.end != n_samples:
            # not the clip read ahead: stopped another way, or not trimmed
            self._held = [*self._cut_back(), *self._held]
        if self._ahead is None:
            rest = np.concatenate([pending, *self._held])[: max(0, n_samples - self.n_samples)]
            if self.reads_ahead:  # the prompt after the clip too, as the answer would; all at once
                self._read_ahead(rest, batch=AT_ONCE)
            else:
                self._decode(self._closing_rows(self._stream, self._last_window(rest)))
        if self._ahead is not None:
            for _ in self._ahead.steps:  # what is left of the end read ahead
                pass
            self.n_samples = self._ahead.end
        self._relabel(part)
