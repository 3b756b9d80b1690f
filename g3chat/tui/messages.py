"""What the engine thread tells the UI: small past-tense messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from g3chat.core.engine.base import Engine, ModelInfo
from g3chat.core.store import StoredMessage
from g3chat.core.types import TurnResult

if TYPE_CHECKING:
    from g3chat.tui.generation import GenerationJob


class ModelLoaded(Message):
    def __init__(self, engine: Engine, info: ModelInfo, notice: str | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.info = info
        self.notice = notice  # e.g. "using the offline test model", from resolving the model


class ModelLoadFailed(Message):
    def __init__(self, error: str, engine: Engine | None) -> None:
        super().__init__()
        self.error = error
        self.engine = engine


class AnswerGrew(Message):
    """New answer text is waiting in the job's buffer (drain it)."""

    def __init__(self, job: GenerationJob) -> None:
        super().__init__()
        self.job = job

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AnswerGrew) and message.job is self.job


class PromptEvaluated(Message):
    """Progress through a long prompt."""

    def __init__(self, job: GenerationJob, done: int, total: int) -> None:
        super().__init__()
        self.job = job
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PromptEvaluated) and message.job is self.job


class ContextTrimmed(Message):
    """The oldest ``dropped`` messages were left out of the prompt to fit the context window."""

    def __init__(self, job: GenerationJob, dropped: int, tokens: int) -> None:
        super().__init__()
        self.job = job
        self.dropped = dropped
        self.tokens = tokens


class AnswerFinished(Message):
    """The turn ended (complete, cancelled or failed); ``saved`` is the stored answer."""

    def __init__(
        self,
        job: GenerationJob,
        result: TurnResult | None,
        saved: StoredMessage | None,
        error: str | None,
    ) -> None:
        super().__init__()
        self.job = job
        self.result = result
        self.saved = saved
        self.error = error
