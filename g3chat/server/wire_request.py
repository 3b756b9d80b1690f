"""A chat-completions request body as g3chat's types: messages, sampling parameters, tools, output format.

Pure (no I/O): attachments are handed to a ``media`` callback (``image_url`` / ``input_audio`` part →
:class:`AttachmentPart`), answers the server gave earlier are recalled through an :class:`AnswerMemory` so
that a re-sent conversation renders to the tokens the KV cache already holds. Anything malformed raises
:class:`WireError` with the status and OpenAI's error fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from g3chat.core.tools.model import NAME_RE
from g3chat.core.types import (
    AttachmentPart,
    GenerationParams,
    Message,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from g3chat.server.memory import AnswerMemory

MediaReader = Callable[[str, Mapping[str, Any]], AttachmentPart]
MAX_STOP = 4  # as OpenAI


class WireError(Exception):
    """A request the server answers with an error: HTTP ``status`` and OpenAI's ``error`` object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str | None = None) -> WireError:
    return WireError(400, message, param=param, code=code)


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass
class ChatRequest:
    messages: list[Message]
    params: GenerationParams
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    tools: list[FunctionTool] = field(default_factory=list)
    tool_choice: str = "auto"  # auto, none, required or a tool's name
    json_schema: Mapping[str, Any] | None = None  # response_format: the answer follows this schema


def parse_request(
    body: Any,
    defaults: GenerationParams,
    *,
    media: MediaReader | None = None,
    memory: AnswerMemory | None = None,
) -> ChatRequest:
    if not isinstance(body, Mapping):
        raise bad("the request body must be a JSON object")
    if body.get("n", 1) != 1:
        raise bad("only n=1 is supported", "n")
    if body.get("logprobs"):
        raise bad("logprobs are not supported", "logprobs")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages must be a non-empty array", "messages")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model must be a string", "model")
    tools = parse_tools(body.get("tools"))
    options = body.get("stream_options") or {}
    return ChatRequest(
        messages=parse_messages(raw, media=media, memory=memory),
        params=parse_params(body, defaults),
        model=model,
        stream=_flag(body, "stream"),
        include_usage=isinstance(options, Mapping) and bool(options.get("include_usage")),
        tools=tools,
        tool_choice=parse_tool_choice(body.get("tool_choice"), [t.name for t in tools]),
        json_schema=parse_response_format(body.get("response_format")),
    )


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(f"{name} must be a boolean", name)
    return value


def _number(body: Mapping[str, Any], name: str, low: float, high: float | None, integer: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise bad(f"{name} must be {'an integer' if integer else 'a number'}", name)
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise bad(f"{name} must be at least {low}{upper} (not {value})", name)
    return value


def parse_params(body: Mapping[str, Any], defaults: GenerationParams) -> GenerationParams:
    """Sampling as in ``ask``: the server's defaults, overridden by what the request sets."""
    changes: dict[str, Any] = {}
    limits: tuple[tuple[str, float, float | None, bool], ...] = (
        ("temperature", 0, 2, False),
        ("top_p", 0, 1, False),
        ("min_p", 0, 1, False),
        ("top_k", 0, None, True),
        ("repeat_penalty", 0, None, False),
        ("seed", -(2**63), 2**64 - 1, True),
    )
    for name, low, high, integer in limits:
        value = _number(body, name, low, high, integer)
        if value is not None:
            changes[name] = value
    if "seed" in changes:
        changes["seed"] %= 2**32  # llama.cpp's seed is 32 bits
    limit = _number(body, "max_completion_tokens", 1, None, True)
    if limit is None:
        limit = _number(body, "max_tokens", 1, None, True)
    if limit is not None:
        changes["max_tokens"] = limit
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise bad("stop must be a string or an array of non-empty strings", "stop")
        if len(stop) > MAX_STOP:
            raise bad(f"stop takes at most {MAX_STOP} strings", "stop")
        changes["stop"] = tuple(stop)
    return replace(defaults, **changes)


def parse_tools(raw: Any) -> list[FunctionTool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad("tools must be an array", "tools")
    tools: list[FunctionTool] = []
    for i, item in enumerate(raw):
        function = item.get("function") if isinstance(item, Mapping) else None
        if (
            not isinstance(item, Mapping)
            or item.get("type") != "function"
            or not isinstance(function, Mapping)
        ):
            raise bad('each tool must be {"type": "function", "function": {...}}', f"tools[{i}]")
        name = function.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise bad(
                "a function needs a name of letters, digits, _ . - (64 at most, not starting with a digit)",
                f"tools[{i}].function.name",
            )
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
            raise bad("parameters must be a JSON schema of type object", f"tools[{i}].function.parameters")
        if any(t.name == name for t in tools):
            raise bad(f"two tools are named {name}", f"tools[{i}].function.name")
        tools.append(FunctionTool(name, str(function.get("description") or ""), dict(parameters)))
    return tools


def parse_tool_choice(raw: Any, names: Sequence[str]) -> str:
    if raw is None:
        return "auto" if names else "none"
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise bad("tool_choice must be auto, none, required or a named function", "tool_choice")
        choice = raw
    elif isinstance(raw, Mapping) and isinstance(raw.get("function"), Mapping):
        choice = str(raw["function"].get("name") or "")
        if choice not in names:
            raise bad(f"tool_choice names {choice!r}, which is not among the tools", "tool_choice")
    else:
        raise bad("tool_choice must be auto, none, required or a named function", "tool_choice")
    if choice != "none" and not names:
        raise bad("tool_choice needs tools", "tool_choice")
    return choice


def parse_response_format(raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema" and isinstance(raw.get("json_schema"), Mapping):
        schema = raw["json_schema"].get("schema")
        if not isinstance(schema, Mapping):
            raise bad("response_format.json_schema needs a schema object", "response_format")
        return dict(schema)
    raise bad("response_format must be text, json_object or json_schema", "response_format")


# ------------------------------------------------------------------------------------------ messages


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") not in ("text", "refusal"):
                raise bad("this message's content may hold only text parts", where)
            texts.append(str(part.get("text") or part.get("refusal") or ""))
        return "".join(texts)
    raise bad("content must be a string or an array of parts", where)


def _user_parts(content: Any, where: str, media: MediaReader | None) -> list[Part]:
    if content is None or isinstance(content, str):
        return [TextPart(content or "")]
    if not isinstance(content, list):
        raise bad("content must be a string or an array of parts", where)
    parts: list[Part] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            parts.append(TextPart(str(part.get("text") or "")))
        elif kind in ("image_url", "input_audio"):
            if media is None:
                raise bad(f"{kind} parts are not accepted here", f"{where}[{j}]")
            parts.append(media("image" if kind == "image_url" else "audio", part))
        else:
            raise bad(f"unknown content part type {kind!r}", f"{where}[{j}]")
    return parts


def _calls(raw: Any, where: str) -> list[ToolCallPart]:
    if not isinstance(raw, list):
        raise bad("tool_calls must be an array", where)
    calls = []
    for j, item in enumerate(raw):
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise bad("a tool call needs a function with a name", f"{where}[{j}]")
        text = function.get("arguments") or "{}"
        try:
            arguments = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError:
            raise bad(
                "function.arguments must be a JSON object", f"{where}[{j}].function.arguments"
            ) from None
        if not isinstance(arguments, dict):
            raise bad("function.arguments must be a JSON object", f"{where}[{j}].function.arguments")
        calls.append(ToolCallPart(str(item.get("id") or ""), function["name"], arguments))
    return calls


def parse_messages(
    raw: Sequence[Any], *, media: MediaReader | None = None, memory: AnswerMemory | None = None
) -> list[Message]:
    """OpenAI messages as g3chat's: ``developer`` is ``system``; an assistant's ``tool_calls`` are tool-call
    parts; consecutive ``tool`` messages are one user message of tool results, as Gemma reads them."""
    out: list[Message] = []
    names: dict[str, str] = {}  # call id → function name, for the results
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, Mapping):
            raise bad("each message must be an object", where)
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            out.append(Message.text_message("system", _text_of(content, f"{where}.content")))
        elif role == "user":
            out.append(Message("user", tuple(_user_parts(content, f"{where}.content", media))))
        elif role == "assistant":
            text = _text_of(content, f"{where}.content")
            calls = _calls(item["tool_calls"], f"{where}.tool_calls") if item.get("tool_calls") else []
            names.update((c.id, c.name) for c in calls)
            remembered = memory.recall(text, calls) if memory is not None else None
            if remembered is not None:
                out.append(remembered)
            else:
                parts: list[Part] = [*([TextPart(text)] if text or not calls else []), *calls]
                out.append(Message("assistant", tuple(parts)))
        elif role == "tool":
            call_id = str(item.get("tool_call_id") or "")
            result = ToolResultPart(call_id, names.get(call_id, ""), _text_of(content, f"{where}.content"))
            if out and out[-1].role == "user" and all(isinstance(p, ToolResultPart) for p in out[-1].parts):
                out[-1] = Message("user", (*out[-1].parts, result))
            else:
                out.append(Message("user", (result,)))
        else:
            raise bad(f"unknown role {role!r}", f"{where}.role")
    return out
