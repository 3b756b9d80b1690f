"""What the engine thread tells the UI: small past-tense messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from g3chat.core.engine.base import Engine, ModelInfo
from g3chat.core.store import StoredMessage
from g3chat.core.types import ToolCallPart, ToolResultPart, TurnResult

if TYPE_CHECKING:
    from g3chat.core.tools.approval import ApprovalRequest
    from g3chat.tui.chat_tools import ApprovalReply
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

    def __init__(self, job: GenerationJob, done: int, total: int, stage: str = "prompt") -> None:
        super().__init__()
        self.job = job
        self.done = done
        self.total = total
        self.stage = stage  # "preamble": the system prompt and tools, evaluated once, then restored

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
    """The turn ended (complete, cancelled or failed); ``saved`` is the stored answer (the last one when
    tools were called: ``tool_calls`` of them, each step saved as its own message)."""

    def __init__(
        self,
        job: GenerationJob,
        result: TurnResult | None,
        saved: StoredMessage | None,
        error: str | None,
        tool_calls: int = 0,
    ) -> None:
        super().__init__()
        self.job = job
        self.result = result
        self.saved = saved
        self.error = error
        self.tool_calls = tool_calls


class ToolCallBegan(Message):
    """The model called a tool; it runs now (after approval, when it changes things)."""

    def __init__(self, job: GenerationJob, call: ToolCallPart, mutating: bool) -> None:
        super().__init__()
        self.job = job
        self.call = call
        self.mutating = mutating


class ToolCallEnded(Message):
    """A tool call's result (``approval`` says how it was allowed, or why not)."""

    def __init__(self, job: GenerationJob, call: ToolCallPart, result: ToolResultPart, approval: str) -> None:
        super().__init__()
        self.job = job
        self.call = call
        self.result = result
        self.approval = approval


class ApprovalNeeded(Message):
    """A call that changes things waits for the person: answer through ``reply``."""

    def __init__(self, job: GenerationJob, request: ApprovalRequest, reply: ApprovalReply) -> None:
        super().__init__()
        self.job = job
        self.request = request
        self.reply = reply


class ToolsNotice(Message):
    """Something to tell the person about the tools (a user tool or MCP server skipped, tools left out)."""

    def __init__(self, text: str, severity: str = "warning") -> None:
        super().__init__()
        self.text = text
        self.severity = severity
