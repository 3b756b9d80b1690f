"""One chat completion on g3chat's engine: the answer path of ``ask``, one step of Gemma's tool protocol.

With tools, the prompt and the grammar are the tool loop's own (:meth:`ToolLoop.request`: the tools'
section in the system prompt, a forced grammar for ``required`` or a named function, a lazy one for
``auto``), but the server does not run the calls: it parses them and hands them to the client, which sends
the results back as ``tool`` messages. Prose before a call streams as it is generated; the call fence is
held back (:class:`FenceFilter`) and comes out as :class:`ToolCallPart` events when the answer is done.

Iterating yields :class:`TextDelta`, then the calls, then one :class:`Usage` and one :class:`Done`.
Every answer is remembered (:class:`AnswerMemory`) so the conversation re-sent with it reuses the KV cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from g3chat.core.chat import Turn
from g3chat.core.engine.base import Engine
from g3chat.core.tools.grammar import _JSON_CHAR, validate_arguments
from g3chat.core.tools.loop import FenceFilter, ToolLoop
from g3chat.core.tools.model import Tool, ToolError
from g3chat.core.tools.protocol import new_call_id, parse_calls
from g3chat.core.types import GenerationParams, Message, PromptProgress, TextDelta, ToolCallPart, Usage
from g3chat.server.memory import AnswerMemory
from g3chat.server.wire_request import ChatRequest

_FINISH = {"stop": "stop", "length": "length", "cancelled": "stop", "error": "stop"}


@dataclass(frozen=True)
class Done:
    """The answer ended: OpenAI's ``finish_reason`` (``stop``, ``length``, ``tool_calls``), and g3chat's."""

    finish_reason: str
    reason: str  # stop, length, cancelled, error
    error: str | None = None
    completion_tokens: int = 0


def _not_run(arguments: dict[str, Any]) -> Any:
    raise ToolError("the server returns tool calls to its client; it runs none")


def json_grammar(schema: Mapping[str, Any]) -> str:
    """A GBNF grammar (root ``root``) for one JSON value following ``schema``, as the tools' arguments."""
    from g3chat.core.tools.converter import converter
    from g3chat.core.tools.coverage import prepare

    writer = converter()
    writer.visit(writer.resolve_refs(prepare(schema).schema, "response"), "")
    rules = writer.format_grammar().splitlines()
    return "\n".join(f"char ::= {_JSON_CHAR}" if line.startswith("char ::= ") else line for line in rules)


class Completion:
    def __init__(
        self,
        engine: Engine,
        request: ChatRequest,
        *,
        cancel: threading.Event | None = None,
        memory: AnswerMemory | None = None,
    ) -> None:
        self.engine = engine
        self.request = request
        self.cancel = cancel or threading.Event()
        self.memory = memory
        self.tools = [Tool(t.name, t.description, t.parameters, _not_run) for t in request.tools]
        self.choice = request.tool_choice if self.tools else "none"
        self.usage: Usage | None = None
        self.calls: list[ToolCallPart] = []
        self.text = ""

    def prompt(self) -> tuple[list[Message], GenerationParams]:
        """What the engine is asked: the tool loop's first step with tools, else the messages as sent."""
        params = self.request.params
        if self.choice != "none":
            loop = ToolLoop(self.engine, self.request.messages, params, self.tools, tool_choice=self.choice)
            return loop.request(self.choice)
        if self.request.json_schema is not None:
            params = replace(params, grammar=json_grammar(self.request.json_schema))
        return list(self.request.messages), params

    def __iter__(self) -> Iterator[TextDelta | PromptProgress | ToolCallPart | Usage | Done]:
        messages, params = self.prompt()
        turn = Turn(self.engine, messages, params, cancel=self.cancel)
        fence = FenceFilter() if self.choice != "none" else None
        shown: list[str] = []
        for event in turn:
            if isinstance(event, TextDelta):
                text = fence.feed(event.text) if fence is not None else event.text
                if text:
                    shown.append(text)
                    yield TextDelta(text)
            elif isinstance(event, PromptProgress):
                yield event
        result = turn.result
        self.usage = result.usage
        reason = result.finish_reason or "error"
        if fence is not None and reason in ("stop", "length"):
            self.calls = self._calls(result.text)
        if fence is not None and not self.calls:
            tail = fence.flush()
            if tail:
                shown.append(tail)
                yield TextDelta(tail)
        self.text = "".join(shown)
        if self.memory is not None and result.usage is not None and reason in ("stop", "length"):
            self.memory.remember(self.text, self.calls, result.text, result.usage.completion_ids)
        yield from self.calls
        if result.usage is not None:
            yield result.usage
        finish = "tool_calls" if self.calls else _FINISH.get(reason, "stop")
        tokens = result.usage.completion_tokens if result.usage is not None else 0
        yield Done(finish, reason, result.error, tokens)

    def _calls(self, raw: str) -> list[ToolCallPart]:
        """The calls in the answer, each with a new id; a call with arguments the schema rejects is left
        out (the grammar makes that rare: it cannot express every schema keyword)."""
        schemas = {t.name: t.parameters for t in self.tools}
        parsed = parse_calls(raw, known=list(schemas), schemas=schemas)
        return [
            ToolCallPart(new_call_id(), c.name, c.arguments)
            for c in parsed.calls
            if c.name in schemas and not validate_arguments(schemas[c.name], c.arguments)
        ]
