"""The tool loop: run the model, run the calls it makes, feed the results back, until it answers.

Each step is one engine turn (a :class:`Turn`, saved like any answer, its calls as :class:`ToolCallPart`),
then the calls run (read-only at once, mutating ones after :class:`ApprovalPolicy` says so) and their
results go back in one user message of :class:`ToolResultPart` (saved too). ``tool_choice``: ``auto``
(the model decides; a lazy grammar makes any call it starts well-formed), ``none`` (no tools),
``required`` (the first step must call one of the tools) or a tool's name (the first step must call it);
later steps are ``auto``. After ``max_steps`` steps with calls, one last step runs without tools, so there
is always an answer.

Every call is validated against its tool's full schema after parsing (the grammar cannot enforce all of
it: :mod:`g3chat.core.tools.coverage`). A call that cannot be read, names an unknown tool or has invalid
arguments goes back to the model as an error result saying what was wrong (which argument, the allowed
range), and the model gets another step to fix it; after ``max_retries`` such retries in a row (steps in
which no call was valid), the next step runs without tools.

Iterating yields :class:`TextDelta` (the prose only: call blocks are held back), :class:`PromptProgress`,
:class:`ToolCallStarted` / :class:`ToolCallFinished`, then one summed :class:`Usage` and one
:class:`Finished`. Afterwards ``result``, ``trace`` and ``history`` describe what happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from g3chat.core.chat import Turn
from g3chat.core.engine.base import Engine
from g3chat.core.errors import G3ChatError, InputError
from g3chat.core.store import Store
from g3chat.core.tools.approval import ApprovalPolicy, ApprovalRequest
from g3chat.core.tools.grammar import OPEN, CallGrammar, call_grammar, validate_arguments
from g3chat.core.tools.model import Tool
from g3chat.core.tools.protocol import new_call_id, parse_calls, tool_spec, tools_prompt
from g3chat.core.tools.run import run_tool
from g3chat.core.types import (
    Finished,
    FinishReason,
    GenerationParams,
    Message,
    Part,
    PromptProgress,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolStatus,
    TurnResult,
    Usage,
)

TOOL_CHOICES = ("auto", "none", "required")
MAX_CALLS_PER_STEP = 4
MAX_RETRIES = 2  # retries after a step without a valid call, before a step without tools
_RETRY_HINT = 'Write the call as ```tool_code\n{"name": "...", "parameters": {...}}\n```'


@dataclass(frozen=True)
class ToolCallStarted:
    call: ToolCallPart
    mutating: bool


@dataclass(frozen=True)
class ToolCallFinished:
    call: ToolCallPart
    result: ToolResultPart
    approval: str  # read-only, yes, allowed, always, once, denied, no-approver, invalid
    elapsed_s: float


@dataclass(frozen=True)
class TraceEntry:
    step: int
    call: ToolCallPart
    result: ToolResultPart
    approval: str
    elapsed_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "id": self.call.id,
            "name": self.call.name,
            "arguments": self.call.arguments,
            "status": self.result.status,
            "result": self.result.content,
            "approval": self.approval,
            "elapsed_s": round(self.elapsed_s, 4),
        }


class FenceFilter:
    """Passes prose through and holds back everything from the call fence on (released by ``flush``)."""

    def __init__(self, marker: str = OPEN) -> None:
        self.marker = marker
        self.pending = ""
        self.hidden: str | None = None

    def feed(self, text: str) -> str:
        if self.hidden is not None:
            self.hidden += text
            return ""
        self.pending += text
        found = self.pending.find(self.marker)
        if found >= 0:
            out, self.hidden, self.pending = self.pending[:found], self.pending[found:], ""
            return out
        keep = next(
            (
                n
                for n in range(min(len(self.marker) - 1, len(self.pending)), 0, -1)
                if self.pending.endswith(self.marker[:n])
            ),
            0,
        )
        out, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending, self.hidden = self.pending + (self.hidden or ""), "", None
        return out


def check_tool_choice(choice: str, names: Sequence[str]) -> str:
    if choice in TOOL_CHOICES or choice in names:
        return choice
    raise InputError(f"tool choice must be auto, none, required or a tool's name (not {choice!r})")


def prompt_with_tools(
    history: Sequence[Message], tools: Sequence[Tool], choice: str = "auto"
) -> list[Message]:
    """The messages a tool-loop step with ``choice`` renders: the tools' description as a system section
    after the leading system messages (none with ``choice="none"``). What a recording read while it is made
    must be evaluated after, to be found in the cache by the answer."""
    if choice == "none":
        return list(history)
    specs = [tool_spec(t.name, t.description, t.parameters) for t in tools]
    lead = next((i for i, m in enumerate(history) if m.role != "system"), len(history))
    section = Message.text_message("system", tools_prompt(specs, choice))
    return [*history[:lead], section, *history[lead:]]


class ToolLoop:
    def __init__(
        self,
        engine: Engine,
        messages: Sequence[Message],
        params: GenerationParams,
        tools: Sequence[Tool],
        *,
        policy: ApprovalPolicy | None = None,
        tool_choice: str = "auto",
        max_steps: int = 8,
        max_retries: int = MAX_RETRIES,
        result_limit: int | None = None,
        cancel: threading.Event | None = None,
        store: Store | None = None,
        conversation_id: int | None = None,
        model_name: str | None = None,
    ) -> None:
        self.engine = engine
        self.history = list(messages)
        self.params = params
        self.tools = {t.name: t for t in tools}
        self.policy = policy or ApprovalPolicy()
        self.tool_choice = check_tool_choice(tool_choice, list(self.tools))
        self.max_steps = max_steps
        self.max_retries = max_retries
        self.invalid_steps = 0  # steps in a row in which no call was valid
        info = engine.info
        self.result_limit = result_limit or (info.n_ctx if info is not None else 16_000)
        self.cancel = cancel or threading.Event()
        self.store = store
        self.conversation_id = conversation_id
        self.model_name = model_name
        self.result = TurnResult()
        self.trace: list[TraceEntry] = []
        self.steps = 0
        self._grammars: dict[str, CallGrammar] = {}
        self._calls: list[ToolCallPart] | None = None
        self._errors: list[str] = []
        self._prose = ""
        self._raw = ""

    # ------------------------------------------------------------------------------ step set-up

    def _choice(self, step: int) -> str:
        if self.tool_choice == "none" or not self.tools or step >= self.max_steps:
            return "none"
        if self.invalid_steps > self.max_retries:
            return "none"
        return self.tool_choice if step == 0 else "auto"

    def _prompt(self, choice: str) -> list[Message]:
        return prompt_with_tools(self.history, list(self.tools.values()), choice)

    def _params(self, choice: str) -> GenerationParams:
        if choice == "none":
            return self.params
        grammar = self._grammars.get(choice)
        if grammar is None:
            if choice in ("auto", "required"):
                pairs = [(t.name, t.parameters) for t in self.tools.values()]
            else:
                pairs = [(choice, self.tools[choice].parameters)]
            calls = MAX_CALLS_PER_STEP if choice == "auto" else 1
            budget = self.params.max_tokens
            grammar = call_grammar(pairs, lazy=choice == "auto", max_calls=calls, budget=budget)
            self._grammars[choice] = grammar
        return replace(self.params, grammar=grammar.text, grammar_triggers=grammar.triggers)

    def request(self, choice: str) -> tuple[list[Message], GenerationParams]:
        """The prompt and parameters of a step with ``choice`` (what the engine is asked)."""
        return self._prompt(choice), self._params(check_tool_choice(choice, list(self.tools)))

    def _parse(self, result: TurnResult, choice: str) -> None:
        """Read the step's calls once (the saved message needs them before the loop does)."""
        if self._calls is not None:
            return
        self._calls, self._errors, self._prose = [], [], result.text
        self._raw = result.text
        if choice == "none" or result.finish_reason not in ("stop", "length"):
            return
        schemas = {name: t.parameters for name, t in self.tools.items()}
        parsed = parse_calls(result.text, known=list(self.tools), schemas=schemas)
        self._calls = [ToolCallPart(new_call_id(), c.name, c.arguments) for c in parsed.calls]
        self._errors, self._prose = parsed.errors, parsed.prose

    def _assistant_parts(self, result: TurnResult, choice: str) -> list[Part]:
        self._parse(result, choice)
        if not self._calls:
            return [TextPart(result.text)]
        return [*([TextPart(self._prose)] if self._prose else []), *(self._calls or [])]

    # ---------------------------------------------------------------------------------- running

    def _execute(self, call: ToolCallPart, step: int) -> TraceEntry:
        started = time.perf_counter()
        tool = self.tools.get(call.name)
        approval = "invalid"
        status: ToolStatus
        if tool is None:
            status, content = "error", f"unknown tool {call.name!r}; the tools are: {', '.join(self.tools)}"
        elif problems := validate_arguments(tool.parameters, call.arguments):
            status = "error"
            content = f"invalid arguments: {'; '.join(problems)}. Fix them and call {tool.name} again."
        else:
            status, content, approval = self._approved_run(tool, call)
        if len(content) > self.result_limit:
            content = (
                content[: self.result_limit] + f"\n[... {len(content) - self.result_limit} more characters]"
            )
        result = ToolResultPart(call.id, call.name, content, status)
        return TraceEntry(step, call, result, approval, time.perf_counter() - started)

    def _approved_run(self, tool: Tool, call: ToolCallPart) -> tuple[ToolStatus, str, str]:
        preview = ""
        if tool.mutating:
            status, preview = run_tool(tool.describe, call.arguments, tool.timeout)
            if status != "ok":
                return "error", preview, "invalid"
        request = ApprovalRequest(tool.name, call.arguments, preview, tool.source, tool.origin)
        verdict = self.policy.check(request, mutating=tool.mutating)
        if not verdict.approved:
            return "denied", verdict.reason, verdict.how
        status, content = run_tool(tool.run, call.arguments, tool.timeout)
        return status, content, verdict.how

    def __iter__(self) -> Iterator[Any]:
        usages: list[Usage] = []
        reason: FinishReason = "stop"
        error: str | None = None
        streamed = False
        for step in range(self.max_steps + 1):
            choice = self._choice(step)
            self._calls = None
            prompt, params = self.request(choice)
            turn = Turn(
                self.engine,
                prompt,
                params,
                cancel=self.cancel,
                store=self.store,
                conversation_id=self.conversation_id,
                model_name=self.model_name,
                parts=partial(self._assistant_parts, choice=choice),
                meta={"tool_step": step, "tool_choice": choice} if choice != "none" or step else None,
            )
            fence = FenceFilter()
            first = True
            try:
                for event in turn:
                    if isinstance(event, TextDelta):
                        text = fence.feed(event.text)
                        if text:
                            if first and streamed:
                                text = "\n\n" + text.lstrip("\n")
                            first, streamed = False, True
                            self.result.chunks.append(text)
                            yield TextDelta(text)
                    elif isinstance(event, PromptProgress):
                        yield event
                    elif isinstance(event, Usage):
                        usages.append(event)
            except G3ChatError as exc:
                if step == 0:
                    raise
                reason, error = "error", f"step {step + 1}: {exc}"
                break
            self.steps = step + 1
            result = turn.result
            self._parse(result, choice)
            if result.finish_reason not in ("stop", "length") or not (self._calls or self._errors):
                tail = fence.flush()
                if tail:
                    self.result.chunks.append(tail)
                    yield TextDelta(tail)
                reason, error = result.finish_reason or "error", result.error
                if result.text:
                    self.history.append(Message("assistant", (TextPart(result.text),)))
                break
            yield from self._run_calls(step)
            if self.cancel.is_set():
                reason = "cancelled"
                break
        self.result.usage = _sum_usage(usages)
        self.result.finish_reason, self.result.error = reason, error
        if self.result.usage is not None:
            yield self.result.usage
        yield Finished(reason, error)

    def _run_calls(self, step: int) -> Iterator[Any]:
        calls = list(self._calls or [])
        results: list[ToolResultPart] = []
        for call in calls:
            if self.cancel.is_set():
                results.append(ToolResultPart(call.id, call.name, "cancelled before it ran", "error"))
                continue
            tool = self.tools.get(call.name)
            yield ToolCallStarted(call, bool(tool and tool.mutating))
            entry = self._execute(call, step)
            self.trace.append(entry)
            results.append(entry.result)
            yield ToolCallFinished(call, entry.result, entry.approval, entry.elapsed_s)
        for problem in self._errors:  # in the trace too, under no name: what the model wrote was no call
            unread = ToolCallPart(new_call_id(), "", {})
            content = f"the tool call could not be read: {problem}. {_RETRY_HINT}"
            entry = TraceEntry(step, unread, ToolResultPart(unread.id, "", content, "error"), "invalid", 0.0)
            self.trace.append(entry)
            results.append(entry.result)
            yield ToolCallStarted(unread, False)
            yield ToolCallFinished(unread, entry.result, entry.approval, 0.0)
        step_entries = [e for e in self.trace if e.step == step]
        valid = any(e.approval != "invalid" for e in step_entries)
        self.invalid_steps = 0 if valid or not step_entries else self.invalid_steps + 1
        parts: list[Part] = [*([TextPart(self._prose)] if self._prose and calls else []), *calls]
        self.history.append(Message("assistant", tuple(parts) if calls else (TextPart(self._raw),)))
        self.history.append(Message("user", tuple(results)))
        if self.store is not None and self.conversation_id is not None:
            self.store.add_message(self.conversation_id, "user", results, meta={"tool_results": True})


def _sum_usage(usages: Sequence[Usage]) -> Usage | None:
    if not usages:
        return None
    tokens = sum(u.completion_tokens for u in usages)
    decode_s = sum(u.completion_tokens / u.decode_tokens_per_s for u in usages if u.decode_tokens_per_s)
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=tokens,
        prompt_eval_tokens=sum(u.prompt_eval_tokens for u in usages),
        ttft_s=usages[0].ttft_s,
        decode_tokens_per_s=tokens / decode_s if decode_s > 0 else None,
        prompt_eval_s=sum(u.prompt_eval_s for u in usages),
        total_s=sum(u.total_s for u in usages),
        estimated=any(u.estimated for u in usages),
    )
