"""One answer to a conversation, headless: the path that ``g3chat ask`` and the chat UI both drive.

An :class:`Answer` takes the conversation as the engine should answer it (the new user message last,
already saved by the caller when the conversation is saved), fits it into the context window the way
:mod:`g3chat.core.context` describes (the oldest turns are left out of the prompt, never out of the
history), then runs one :class:`~g3chat.core.chat.Turn` or, with a :class:`ToolPlan`, the tool loop, which
save the answer while it streams. Cancelling is the ``cancel`` event, checked by the engine every token.

Iterating yields :class:`HistoryTrimmed` first when something was left out, then the engine's events
(:class:`TextDelta`, :class:`PromptProgress`, :class:`Usage`, :class:`Finished`) and, with tools,
``ToolCallStarted`` / ``ToolCallFinished``. Each front end maps these to its own output: the CLI to stdout
and stderr, the chat UI to its messages. Afterwards ``result``, ``saved``, ``steps`` and ``trace`` describe
what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from g3chat.core.chat import Turn
from g3chat.core.context import answer_reserve, fit_to_context
from g3chat.core.engine.base import Engine
from g3chat.core.store import Store, StoredMessage
from g3chat.core.types import GenerationParams, Message, TurnResult, user

if TYPE_CHECKING:  # the tools' modules load with the tools, not with every answer
    from g3chat.core.tools.approval import ApprovalPolicy
    from g3chat.core.tools.loop import ToolLoop, TraceEntry
    from g3chat.core.tools.model import Tool

DEFAULT_OUTPUT_LIMIT = 16_000  # characters of a tool's result given back to the model


@dataclass(frozen=True)
class HistoryTrimmed:
    """The oldest ``dropped`` messages were left out of the prompt so that the answer has room."""

    dropped: int
    tokens: int  # prompt tokens of what was kept
    n_ctx: int
    fits: bool  # False when even the latest turn alone leaves the answer no room


@dataclass
class ToolPlan:
    """The tools an answer may call, and how: who approves mutating calls, which choice, how many steps."""

    tools: Sequence[Tool]
    policy: ApprovalPolicy
    tool_choice: str = "auto"
    max_steps: int = 8
    output_limit: int = DEFAULT_OUTPUT_LIMIT


def tools_section_tokens(engine: Engine, tools: Sequence[Tool]) -> int:
    """Prompt tokens that describing ``tools`` costs with this engine (the tool loop's system section)."""
    from g3chat.core.tools.protocol import tool_spec, tools_prompt

    specs = [tool_spec(t.name, t.description, t.parameters) for t in tools]
    section = Message.text_message("system", tools_prompt(specs, "auto"))
    probe = user("?")
    return max(0, engine.count_tokens([section, probe]) - engine.count_tokens([probe]))


class Answer:
    """Iterate to answer ``messages``; ``tools_tokens`` is the room the tools' description needs (counted
    by :func:`tools_section_tokens` when not given)."""

    def __init__(
        self,
        engine: Engine,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        cancel: threading.Event | None = None,
        store: Store | None = None,
        conversation_id: int | None = None,
        model_name: str | None = None,
        tools: ToolPlan | None = None,
        tools_tokens: int | None = None,
    ) -> None:
        self.engine = engine
        self.messages = list(messages)
        self.params = params
        self.cancel = cancel or threading.Event()
        self.store = store
        self.conversation_id = conversation_id
        self.model_name = model_name
        self.tools = tools
        self.tools_tokens = tools_tokens
        self.turn: Turn | None = None
        self.loop: ToolLoop | None = None

    def _fit(self) -> tuple[list[Message], HistoryTrimmed | None]:
        """The messages that fit the window with room for the answer (and the tools' description)."""
        info = self.engine.info
        if info is None or info.n_ctx <= 0:  # a server may not say how large its window is
            return self.messages, None
        extra = 0
        if self.tools is not None and self.tools.tools and self.tools.tool_choice != "none":
            given = self.tools_tokens
            extra = given if given is not None else tools_section_tokens(self.engine, self.tools.tools)
        reserve = answer_reserve(info.n_ctx, self.params.max_tokens) + extra
        fitted = fit_to_context(self.messages, self.engine.count_tokens, info.n_ctx, reserve)
        if not fitted.dropped:
            return fitted.messages, None
        return fitted.messages, HistoryTrimmed(fitted.dropped, fitted.tokens, info.n_ctx, fitted.fits)

    def __iter__(self) -> Iterator[Any]:
        history, trimmed = self._fit()
        if trimmed is not None:
            yield trimmed
        stream: Any
        if self.tools is not None:
            stream = self.loop = self._tool_loop(history, self.tools)
        else:
            stream = self.turn = Turn(
                self.engine,
                history,
                self.params,
                cancel=self.cancel,
                store=self.store,
                conversation_id=self.conversation_id,
                model_name=self.model_name,
            )
        yield from stream

    def _tool_loop(self, history: list[Message], plan: ToolPlan) -> ToolLoop:
        from g3chat.core.tools.loop import ToolLoop

        info = self.engine.info
        n_ctx = info.n_ctx if info is not None else 0
        limit = min(plan.output_limit, n_ctx) if n_ctx > 0 else plan.output_limit
        return ToolLoop(
            self.engine,
            history,
            self.params,
            plan.tools,
            policy=plan.policy,
            tool_choice=plan.tool_choice,
            max_steps=plan.max_steps,
            result_limit=limit,
            cancel=self.cancel,
            store=self.store,
            conversation_id=self.conversation_id,
            model_name=self.model_name,
        )

    @property
    def result(self) -> TurnResult | None:
        """The answer (None when it never started: the engine refused before streaming)."""
        stream = self.loop or self.turn
        return stream.result if stream is not None else None

    @property
    def steps(self) -> int:
        return self.loop.steps if self.loop is not None else 0

    @property
    def trace(self) -> list[TraceEntry]:
        return self.loop.trace if self.loop is not None else []

    @property
    def saved(self) -> StoredMessage | None:
        """The saved answer: the turn's message, or the tool loop's last step (each step is saved)."""
        if self.turn is not None:
            return self.turn.saved
        if self.loop is None or self.store is None or self.conversation_id is None:
            return None
        path = self.store.messages(self.conversation_id)
        return path[-1] if path and path[-1].role == "assistant" else None

    @property
    def kept(self) -> bool:
        """Whether any of the answer was saved (with tools: at least one step ran)."""
        if self.loop is not None:
            return self.store is not None and self.conversation_id is not None and self.loop.steps > 0
        return self.saved is not None
