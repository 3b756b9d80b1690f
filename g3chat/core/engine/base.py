"""The engine protocol every backend implements (llama.cpp in-process, remote servers, the fake)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from g3chat.core.types import EngineEvent, GenerationParams, Message


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

    def close(self) -> None: ...
