"""The windows of a recording read into the KV cache as it arrives: :class:`WindowReader`, the part of
:class:`~g3chat.core.engine.listening.Listener` that lays the clip out (see that module's docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from g3chat.core.engine.projector import placeholder_ids
from g3chat.core.errors import InputError
from g3chat.core.types import AttachmentPart, Message


@dataclass
class Window:
    start: int  # samples
    position: int  # of its first row in the cache
    rows: list[np.ndarray]


class WindowReader:
    """The prompt up to the clip, the clip's rows window by window, its end, and the stored clip's ids."""

    def __init__(self, engine: Any, messages: Sequence[Message], live: AttachmentPart) -> None:
        self.engine, self.hearing, self.live = engine, engine._hearing, live
        self.messages = list(messages)
        self.n_samples = 0
        self.rows_read = 0  # soft-token rows in the cache so far
        self._kept: int | None = None  # cache length before listening, as far as the prompt shares it
        self._windows: list[Window] = []
        self._stream: Any = None
        self._ids = 0
        self._tail: list[int] = []  # the prompt's tokens right after the clip

    def _begin(self, messages: Sequence[Message]) -> None:
        """Evaluate the prompt up to the clip's ``<start_of_audio>``."""
        from g3chat.core.engine.llama import PromptPlan

        engine = self.engine
        plan = engine.plan(messages)  # the stand-in is planned as one window
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
        self._windows.append(Window(start, self.engine.llama.n_tokens, []))
        self._stream = StreamingEncoder(self.hearing.encoder())

    def _window_room(self) -> int:
        """Samples the open window still takes."""
        return self._windows[-1].start + self.hearing.window - self.n_samples

    def _read(self, samples: np.ndarray, *, more: bool = False) -> None:
        """Read ``samples`` (``more``: and more samples follow them). A window that they fill and go past
        is closed in the same pass through the tower as its last samples, and the next one opened."""
        while len(samples):
            room = self._window_room()
            if room == 0:
                self._close()
                self._open(self.n_samples)
                continue
            if len(samples) > room or (more and len(samples) == room):
                self._decode(self._closing_rows(self._stream, samples[:room]))
                self.n_samples += room
                samples = samples[room:]
                self._open(self.n_samples)
                continue
            soft, keep = self._stream.push(samples)
            self.n_samples += len(samples)
            samples = samples[:0]
            self._decode(np.where(keep[:, None], soft, self._filler()[0]))

    def _last_window(self, samples: np.ndarray) -> np.ndarray:
        """Read the windows that ``samples``, the clip's last ones, fill (each closed in one pass); return
        those left for the last window, to be read with its end."""
        over = len(samples) - self._window_room()
        if over > 0:
            self._read(samples[: len(samples) - over], more=True)
            return samples[len(samples) - over :]
        return samples

    def _close(self) -> None:
        self._decode(self._closing_rows(self._stream))

    def _closing_rows(self, stream: Any, samples: np.ndarray | None = None) -> np.ndarray:
        """The window's last soft tokens (of ``samples`` too, the clip's last ones, if given), its padding
        rows and ``<end_of_audio>``."""
        from g3chat.core.engine.hearing import MIN_SAMPLES

        window = self._windows[-1]
        padding, end = self._filler()
        tail = np.zeros(0, np.float32) if samples is None else samples
        short = MIN_SAMPLES - (self.n_samples + len(tail) - window.start)
        if short > 0:  # as Hearing.rows pads a short clip
            tail = np.concatenate([tail, np.zeros(short, np.float32)])
        soft, keep = stream.finish(tail)
        n_pad = self.hearing.config.soft_tokens - stream.n_tokens
        if n_pad < 0:
            raise InputError("the window holds more soft tokens than the model's audio window")
        pad = np.broadcast_to(padding, (n_pad, padding.shape[0]))
        return np.concatenate([np.where(keep[:, None], soft, padding), pad, end[None, :]])

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

    def _relabel(self, part: AttachmentPart) -> None:
        """Give the clip's positions the stored recording's placeholder ids (its windows are the ones
        :func:`~g3chat.core.engine.hearing.windows` lays out for the stored clip) and keep its rows."""
        from g3chat.core.engine.hearing import windows

        hearing, llm = self.hearing, self.engine.llama
        layout: list[tuple[int, int]] = []
        for i, window in enumerate(self._windows):
            end = self._windows[i + 1].start if i + 1 < len(self._windows) else self.n_samples
            layout.append((window.start, end))
        if hearing._n_samples(part) != self.n_samples:
            raise InputError(f"{part.name} is not the recording that was read ({self.n_samples} samples)")
        if layout != windows(self.n_samples, hearing.window):
            raise InputError(f"{part.name} was read in other windows than the stored clip is laid out in")
        n_rows = hearing.config.soft_tokens + 1
        for window, span in zip(self._windows, layout):
            ids = placeholder_ids(f"{hearing.key}|{part.sha256}|{span[0]}:{span[1]}", n_rows)
            llm.input_ids[window.position : window.position + n_rows] = ids
            hearing.remember(part.sha256, span, np.concatenate(window.rows))

    def _discard(self) -> None:
        from g3chat.core.engine.kv import KVSession

        if self._kept is not None and self.engine._llm is not None:
            KVSession(self.engine.llama).truncate(self._kept)
