"""A scripted engine for UI flow tests. It never touches llama.cpp; engine tests use the real one."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from g3chat.core.engine.base import MMPROJ_FIX, NO_AUDIO, NO_VISION, MediaProblem, ModelInfo
from g3chat.core.errors import EngineError
from g3chat.core.media.textfile import block
from g3chat.core.types import (
    AttachmentPart,
    EngineEvent,
    Finished,
    FinishReason,
    GenerationParams,
    Message,
    TextDelta,
    Usage,
)

_Fake = TypeVar("_Fake", bound="FakeEngine")  # enqueue returns the subclass it is called on


class FakeEngine:
    """Streams queued answers piece by piece.

    ``enqueue("Hello world")`` queues an answer split on spaces; ``enqueue(["Hel", "lo"])`` queues exact
    pieces; ``enqueue(EngineError("boom"))`` makes the next turn fail. With nothing queued it echoes the
    last user message. ``delay`` sleeps between pieces so tests can cancel mid-stream.
    """

    def __init__(
        self,
        *,
        delay: float = 0.0,
        n_ctx: int = 4096,
        load_delay: float = 0.0,
        vision: bool = False,
        audio: bool = False,
        tokens_per_media: int = 256,
    ) -> None:
        self.delay = delay
        self.vision = vision
        self.audio = audio
        self.tokens_per_media = tokens_per_media
        self.load_delay = load_delay
        self.n_ctx = n_ctx
        self._queue: deque[list[str] | Exception] = deque()
        self._info: ModelInfo | None = None
        self.calls: list[list[Message]] = []
        self.load_error: Exception | None = None

    def enqueue(self: _Fake, *answers: str | Iterable[str] | Exception) -> _Fake:
        for answer in answers:
            if isinstance(answer, Exception):
                self._queue.append(answer)
            elif isinstance(answer, str):
                words = answer.split(" ")
                self._queue.append([w if i == 0 else " " + w for i, w in enumerate(words)])
            else:
                self._queue.append(list(answer))
        return self

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def load(self) -> ModelInfo:
        if self.load_delay:
            time.sleep(self.load_delay)
        if self.load_error is not None:
            raise self.load_error
        self._info = ModelInfo(
            name="fake",
            path=None,
            n_ctx=self.n_ctx,
            architecture="fake",
            vision=self.vision,
            audio=self.audio,
            engine="fake",
        )
        return self._info

    def count_tokens(self, messages: Sequence[Message]) -> int:
        media = sum(
            1
            for m in messages
            for p in m.attachments
            if p.kind != "text_file" and self.media_problem(p) is None
        )
        files = sum(len(block(p).split()) for m in messages for p in m.attachments if p.kind == "text_file")
        return sum(len(m.text.split()) + 4 for m in messages) + media * self.tokens_per_media + files

    def media_problem(self, part: AttachmentPart) -> MediaProblem | None:
        if part.kind == "image" and not self.vision:
            return MediaProblem(NO_VISION, MMPROJ_FIX.format(kind="image"))
        if part.kind == "audio" and not self.audio:
            return MediaProblem(NO_AUDIO, MMPROJ_FIX.format(kind="audio"))
        return None

    def stream_chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[EngineEvent]:
        if self._info is None:
            raise EngineError("the model is not loaded")
        self.calls.append(list(messages))
        script = self._queue.popleft() if self._queue else None
        if isinstance(script, Exception):
            raise script
        if script is None:
            last = next((m.text for m in reversed(messages) if m.role == "user"), "")
            script = [w if i == 0 else " " + w for i, w in enumerate(f"echo: {last}".split(" "))]
        start = time.perf_counter()
        produced = 0
        reason: FinishReason = "stop"
        first: float | None = None
        for piece in script:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            if params.max_tokens is not None and produced >= params.max_tokens:
                reason = "length"
                break
            if self.delay:
                time.sleep(self.delay)
            if first is None:
                first = time.perf_counter() - start
            produced += 1
            yield TextDelta(piece)
        total = time.perf_counter() - start
        prompt = self.count_tokens(messages)
        yield Usage(
            prompt_tokens=prompt,
            completion_tokens=produced,
            prompt_eval_tokens=prompt,
            ttft_s=first,
            decode_tokens_per_s=(produced / total) if total > 0 and produced else None,
            prompt_eval_s=0.0,
            total_s=total,
        )
        yield Finished(reason)

    def close(self) -> None:
        self._info = None
