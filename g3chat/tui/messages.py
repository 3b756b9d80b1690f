"""What the engine thread tells the UI: small past-tense messages, declared as dataclasses (Textual's
``Message`` initialises itself in ``__post_init__``; ``eq=False`` keeps each message equal only to itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message
from textual.notifications import SeverityLevel

from g3chat.core.engine.base import Engine, ModelInfo
from g3chat.core.store import StoredMessage
from g3chat.core.types import ToolCallPart, ToolResultPart, TurnResult

if TYPE_CHECKING:
    from g3chat.core.tools.approval import ApprovalRequest
    from g3chat.tui.chat_tools import ApprovalReply
    from g3chat.tui.generation import GenerationJob


@dataclass(eq=False)
class ModelLoaded(Message):
    engine: Engine
    info: ModelInfo
    notice: str | None = None  # e.g. "using the offline test model", from resolving the model


@dataclass(eq=False)
class ModelLoadFailed(Message):
    error: str
    engine: Engine | None


@dataclass(eq=False)
class AnswerGrew(Message):
    """New answer text is waiting in the job's buffer (drain it)."""

    job: GenerationJob

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AnswerGrew) and message.job is self.job


@dataclass(eq=False)
class PromptEvaluated(Message):
    """Progress through a long prompt."""

    job: GenerationJob
    done: int
    total: int
    stage: str = "prompt"  # "preamble": the system prompt and tools, evaluated once, then restored

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PromptEvaluated) and message.job is self.job


@dataclass(eq=False)
class ContextTrimmed(Message):
    """The oldest ``dropped`` messages were left out of the prompt to fit the context window."""

    job: GenerationJob
    dropped: int
    tokens: int


@dataclass(eq=False)
class AnswerFinished(Message):
    """The turn ended (complete, cancelled or failed); ``saved`` is the stored answer (the last one when
    tools were called: ``tool_calls`` of them, each step saved as its own message)."""

    job: GenerationJob
    result: TurnResult | None
    saved: StoredMessage | None
    error: str | None
    tool_calls: int = 0


@dataclass(eq=False)
class ToolCallBegan(Message):
    """The model called a tool; it runs now (after approval, when it changes things)."""

    job: GenerationJob
    call: ToolCallPart
    mutating: bool


@dataclass(eq=False)
class ToolCallEnded(Message):
    """A tool call's result (``approval`` says how it was allowed, or why not)."""

    job: GenerationJob
    call: ToolCallPart
    result: ToolResultPart
    approval: str


@dataclass(eq=False)
class ApprovalNeeded(Message):
    """A call that changes things waits for the person: answer through ``reply``."""

    job: GenerationJob
    request: ApprovalRequest
    reply: ApprovalReply


@dataclass(eq=False)
class ToolsNotice(Message):
    """Something to tell the person about the tools (a user tool or MCP server skipped, tools left out)."""

    text: str
    severity: SeverityLevel = "warning"
