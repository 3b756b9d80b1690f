"""Tools in the chat UI: which conversations may call them, loading them, and asking the person.

The tool set (built-in, user and MCP tools) is loaded the first time an answer needs it, in the engine
thread (starting MCP servers can take seconds), and closed when the app shuts down. Each conversation has
its own :class:`ApprovalPolicy`, so "always" lasts for that chat until g3chat quits. Whether a
conversation uses tools is ``ui.tools`` unless the conversation says otherwise (the palette toggle, kept
in its ``params`` as ``"tools"``).

A mutating call is approved through :class:`UIApprover`: from the engine thread it posts
:class:`~g3chat.tui.messages.ApprovalNeeded` and waits; the UI shows the approval dialog and answers
through the message's :class:`ApprovalReply`. An answer that is cancelled meanwhile (Esc, quit) stops the
wait with a denial, so the engine thread never hangs on a dialog nobody will answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from g3chat.tui import messages as msg

if TYPE_CHECKING:  # the tools' modules load with the tools, not with the app
    from g3chat.config import Settings
    from g3chat.core.answer import ToolPlan
    from g3chat.core.engine.base import Engine
    from g3chat.core.store import Conversation
    from g3chat.core.tools.approval import ApprovalPolicy, ApprovalRequest
    from g3chat.core.tools.model import Tool
    from g3chat.core.tools.setup import ToolSet
    from g3chat.tui.generation import GenerationJob, Post

ToolsFactory = Callable[[], "ToolSet"]
PARAM_KEY = "tools"  # a conversation's own on/off, in its params
MAX_CONTEXT_SHARE = 4  # tools are left out when their descriptions need more than 1/4 of the window
POLL_S = 0.1


DENY = "deny"  # the values of g3chat.core.tools.approval.Decision: once, always, deny


class ApprovalReply:
    """The UI's answer to one approval request, handed from the UI thread to the engine thread."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.decision = DENY

    def answer(self, decision: str) -> None:
        if not self._done.is_set():
            self.decision = decision
            self._done.set()

    @property
    def answered(self) -> bool:
        return self._done.is_set()

    def wait(self, cancel: threading.Event) -> str:
        """Block until answered; a cancelled answer is a denial."""
        while not self._done.wait(POLL_S):
            if cancel.is_set():
                return DENY
        return self.decision


class UIApprover:
    """An :class:`~g3chat.core.tools.approval.Approver` asking in the chat UI (call it off the UI thread)."""

    def __init__(self, job: GenerationJob, post: Post) -> None:
        self.job = job
        self.post = post

    def __call__(self, request: ApprovalRequest) -> str:
        if self.job.cancel.is_set():
            return DENY
        reply = ApprovalReply()
        self.post(msg.ApprovalNeeded(self.job, request, reply))
        return reply.wait(self.job.cancel)


class ChatTools:
    def __init__(
        self,
        default_on: bool,
        factory: ToolsFactory | None,
        *,
        max_steps: int = 8,
        output_limit: int = 16_000,
    ) -> None:
        self.default_on = default_on
        self._factory = factory
        self.max_steps = max_steps
        self.output_limit = output_limit
        self._lock = threading.Lock()
        self._toolset: ToolSet | None = None
        self._policies: dict[int, ApprovalPolicy] = {}
        self._section_tokens: dict[int, int] = {}  # id(engine) -> tokens of the tools' description
        self._said_too_big = False

    @classmethod
    def from_settings(cls, settings: Settings, factory: ToolsFactory | None) -> ChatTools:
        tools = settings.tools
        return cls(settings.ui.tools, factory, max_steps=tools.max_steps, output_limit=tools.output_limit)

    @property
    def available(self) -> bool:
        return self._factory is not None

    def enabled(self, conversation: Conversation | None) -> bool:
        """Whether answers in ``conversation`` (None: a new chat) may call tools."""
        if not self.available:
            return False
        own = conversation.params.get(PARAM_KEY) if conversation is not None else None
        return self.default_on if own is None else bool(own)

    def policy(self, conversation_id: int) -> ApprovalPolicy:
        from g3chat.core.tools.approval import ApprovalPolicy

        return self._policies.setdefault(conversation_id, ApprovalPolicy())

    def load(self) -> tuple[list[Tool], list[str]]:
        """The tools, loading them on first use (engine thread); notices only the first time."""
        with self._lock:
            if self._toolset is not None:
                return list(self._toolset.registry), []
            assert self._factory is not None
            self._toolset = self._factory()
            return list(self._toolset.registry), self._toolset.registry.notices()

    def section_tokens(self, engine: Engine, tools: Sequence[Tool]) -> int:
        """Prompt tokens the tools' description costs with this engine (counted once)."""
        from g3chat.core.answer import tools_section_tokens

        key = id(engine)
        if key not in self._section_tokens:
            self._section_tokens[key] = tools_section_tokens(engine, tools)
        return self._section_tokens[key]

    def _too_big(self, engine: Engine, tools: Sequence[Tool]) -> int | None:
        """What describing ``tools`` costs, when it would take more than 1/MAX_CONTEXT_SHARE of the window."""
        info = engine.info
        if not tools or info is None or info.n_ctx <= 0:
            return None
        cost = self.section_tokens(engine, tools)
        return cost if cost * MAX_CONTEXT_SHARE > info.n_ctx else None

    def described(self, engine: Engine) -> list[Tool] | None:
        """The tools an answer would describe to ``engine`` now, as :meth:`for_answer` decides (UI thread,
        engine free); None until they are loaded (the first answer that needs them loads them)."""
        with self._lock:
            if self._toolset is None:
                return None
            tools = list(self._toolset.registry)
        return [] if self._too_big(engine, tools) is not None else tools

    def for_answer(self, engine: Engine, post: Post) -> list[Tool]:
        """The tools an answer may call (engine thread): none when describing them would not fit."""
        tools, notices = self.load()
        for notice in notices:
            post(msg.ToolsNotice(notice))
        cost = self._too_big(engine, tools)
        if cost is None:
            return tools
        if not self._said_too_big:
            self._said_too_big = True
            n_ctx = engine.info.n_ctx if engine.info is not None else 0
            post(
                msg.ToolsNotice(
                    f"Tools left out: describing them takes {cost} tokens, too much of this "
                    f"{n_ctx}-token context window (raise engine.n_ctx, or turn tools off)."
                )
            )
        return []

    def plan(self, job: GenerationJob, tools: Sequence[Tool], post: Post) -> ToolPlan:
        """How one answer may call ``tools``: asking the person through the UI."""
        from g3chat.core.answer import ToolPlan

        policy = self.policy(job.conversation_id)
        policy.approver = UIApprover(job, post)
        return ToolPlan(tools, policy, max_steps=self.max_steps, output_limit=self.output_limit)

    def close(self) -> None:
        with self._lock:
            if self._toolset is not None:
                self._toolset.close()
