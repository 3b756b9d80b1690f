"""The engine protocol every backend implements (llama.cpp in-process, remote servers, the fake)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from g3chat.core.types import AttachmentPart, EngineEvent, GenerationParams, Message

NO_VISION = "this model has no vision projector"
NO_AUDIO = "this model has no audio projector"
MMPROJ_FIX = "pass --mmproj PATH, the model's mmproj GGUF, to use {kind}s"


@dataclass(frozen=True)
class MediaProblem:
    """Why an engine cannot take an attachment, and what would fix it (empty when nothing would)."""

    reason: str
    fix: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is, for headers, ``--json`` and history rows.

    ``engine`` says which engine serves it: ``"llama.cpp"`` (in this process), ``"remote"`` (an
    OpenAI-compatible server at ``base_url``) or ``"fake"``. For a remote model ``path`` is None and
    ``n_ctx`` is 0 when the server does not say how large its context window is.
    """

    name: str
    path: str | None
    n_ctx: int
    n_ctx_train: int | None = None
    architecture: str | None = None
    chat_format: str | None = None
    load_s: float = 0.0
    is_test_model: bool = False
    engine: str = "llama.cpp"
    base_url: str | None = None
    projector: str | None = None  # the mmproj file's name when one is loaded
    vision: bool = False
    audio: bool = False

    @property
    def engine_label(self) -> str:
        """A short description for a header: ``llama.cpp`` or ``remote http://host:8080/v1``."""
        return f"{self.engine} {self.base_url}" if self.base_url else self.engine


@runtime_checkable
class Engine(Protocol):
    """Load once; stream chat turns; stop promptly when ``cancel`` is set.

    ``stream_chat`` yields :class:`TextDelta` (and :class:`PromptProgress`) events as they happen, then one
    :class:`Usage` and a final :class:`Finished`. It checks ``cancel`` between prompt batches and after every
    generated token. Engines are not thread-safe: one thread owns an engine at a time.
    """

    @property
    def info(self) -> ModelInfo | None: ...

    def load(self) -> ModelInfo: ...

    def stream_chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[EngineEvent]: ...

    def count_tokens(self, messages: Sequence[Message]) -> int: ...

    def media_problem(self, part: AttachmentPart) -> MediaProblem | None:
        """None when the loaded model can take ``part``; otherwise why not. Attachments it cannot take
        stay in the history and reach the model as a short text note instead."""
        ...

    def close(self) -> None: ...


# Builds the engine to run (not loaded) and returns it with a one-line notice to show, if any. The CLI's
# runtime makes one; the chat UI calls it in its loading thread, after the window is up.
EngineFactory = Callable[[], tuple[Engine, str | None]]
