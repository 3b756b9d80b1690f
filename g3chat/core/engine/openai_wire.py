"""The OpenAI chat-completions wire format: g3chat messages out, streamed chunks in.

Pure functions and small accumulators, no I/O, so every server-specific detail (llama-server's
``timings``, vLLM's ``max_model_len``, the shapes of error bodies) is handled and tested in one place.
Content parts map to OpenAI content through :data:`PART_MAPPERS`: adding a part type (images as data URLs,
with the attachments issue) is one function registered there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from g3chat.core.media import textfile
from g3chat.core.tools.protocol import format_calls, format_result
from g3chat.core.types import (
    AttachmentPart,
    FinishReason,
    GenerationParams,
    Message,
    OpaquePart,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

# ----------------------------------------------------------------------------------------- requests


def text_part(part: TextPart) -> dict[str, Any]:
    return {"type": "text", "text": part.text}


def attachment_part(part: AttachmentPart) -> dict[str, Any] | None:
    """A text file travels as its fenced block (as the local prompt has it); media are not sent yet."""
    if textfile.is_text(part):
        return {"type": "text", "text": f"{textfile.block(part)}\n\n"}
    return None


# type -> mapper. A mapper returning None drops the part (OpaquePart: never sent to a model).
PART_MAPPERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {
    TextPart: text_part,
    OpaquePart: lambda part: None,
    AttachmentPart: attachment_part,
    # Tool calls and results from g3chat's own tool loop travel as the protocol text the model wrote/read.
    ToolCallPart: lambda part: {"type": "text", "text": f"\n{format_calls([part])}\n"},
    ToolResultPart: lambda part: {"type": "text", "text": f"\n{format_result(part)}\n"},
}


def content_of(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    """A plain string when every part is text (what every server accepts), else a list of content parts."""
    mapped = [m for m in (PART_MAPPERS[type(p)](p) for p in parts) if m is not None]
    if all(m["type"] == "text" for m in mapped):
        return "".join(m["text"] for m in mapped)
    return mapped


def _joined(a: tuple[Part, ...], b: tuple[Part, ...]) -> tuple[Part, ...]:
    if not a:
        return b
    if not b:
        return a
    return (*a, TextPart("\n\n"), *b)


def prepare_messages(messages: Sequence[Message]) -> list[Message]:
    """Gemma's templates insist on one leading system message and strict user/assistant alternation.

    The same normalization the local engine applies (see :func:`g3chat.core.prompt.normalize`), on parts:
    system messages merge into one at the front; consecutive messages of one role merge (a question whose
    answer failed, then another); a conversation starting with the assistant gets an empty user turn.
    """
    system: tuple[Part, ...] = ()
    turns: list[Message] = []
    for message in messages:
        if message.role == "system":
            if message.text.strip():
                system = _joined(system, message.parts)
        elif turns and turns[-1].role == message.role:
            turns[-1] = Message(message.role, _joined(turns[-1].parts, message.parts))
        else:
            turns.append(message)
    if turns and turns[0].role == "assistant":
        turns.insert(0, Message("user", (TextPart(""),)))
    return ([Message("system", system)] if system else []) + turns


def request_body(
    messages: Sequence[Message],
    params: GenerationParams,
    model: str | None,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A streaming chat-completions request.

    ``top_k``, ``min_p`` and ``repeat_penalty`` are not in OpenAI's API but llama-server, the llama-cpp-python
    server and vLLM read them (vLLM calls the last one ``repetition_penalty``); servers ignore what they do
    not know.
    """
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": content_of(m.parts)} for m in prepare_messages(messages)],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
    }
    if model:
        body["model"] = model
    if params.repeat_penalty != 1.0:
        body["repeat_penalty"] = body["repetition_penalty"] = params.repeat_penalty
    if params.seed is not None:
        body["seed"] = params.seed
    if params.max_tokens:
        body["max_tokens"] = params.max_tokens
    if params.stop:
        body["stop"] = list(params.stop)
    if tools:
        body["tools"] = [dict(t) for t in tools]
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return body


# -------------------------------------------------------------------------------------------- stream


@dataclass(frozen=True)
class ToolCallRequest:
    """The model asked for a tool (the server's ``tools`` API). ``arguments`` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        return json.loads(self.arguments) if self.arguments.strip() else {}


@dataclass
class ToolCallAccumulator:
    """Tool calls arrive in fragments keyed by ``index``: the id and name once, the arguments in pieces."""

    _calls: dict[int, dict[str, str]] = field(default_factory=dict)

    def feed(self, deltas: Sequence[Mapping[str, Any]]) -> None:
        for position, delta in enumerate(deltas):
            index = delta.get("index", position)
            call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if delta.get("id"):
                call["id"] = str(delta["id"])
            function = delta.get("function") or {}
            name = str(function.get("name") or "")
            if name and name != call["name"]:  # llama-cpp-python repeats the whole name in every fragment
                call["name"] += name
            if function.get("arguments"):
                call["arguments"] += str(function["arguments"])

    def calls(self) -> list[ToolCallRequest]:
        return [
            ToolCallRequest(c["id"] or f"call_{i}", c["name"], c["arguments"])
            for i, c in sorted(self._calls.items())
            if c["name"]
        ]


_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "tool_calls": "stop",
    "function_call": "stop",
    "length": "length",
}


@dataclass
class StreamState:
    """Everything one streamed answer told us, accumulated chunk by chunk."""

    finish_reason: FinishReason | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    content_chunks: int = 0
    tools: ToolCallAccumulator = field(default_factory=ToolCallAccumulator)

    def feed(self, chunk: Mapping[str, Any]) -> str:
        """Take one parsed chunk; return the answer text it carries ("" if none)."""
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        if isinstance(chunk.get("timings"), dict):
            self.timings = chunk["timings"]  # llama-server
        text = ""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                text += delta["content"]
                self.content_chunks += 1
            if delta.get("tool_calls"):
                self.tools.feed(delta["tool_calls"])
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = _FINISH.get(str(reason), "stop")
        return text


class NotEventStream(Exception):
    """The server answered a streaming request with something other than server-sent events."""


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event in ``lines`` (without line terminators), per the WHATWG rules:
    ``data:`` lines of one event join with newlines, a blank line ends the event, ``:`` lines are comments,
    other fields (``event``, ``id``, ``retry``) do not matter here. Written here rather than taken from
    httpx-sse, the library for this, because that imports plain httpx (and with it rich and click), not
    httpx2."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    # An event cut off before its blank line is not dispatched (the stream dropped mid-event).


def error_text(body: Any) -> str:
    """The human part of an error body, whatever shape the server uses, on one line."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return " ".join(body.split())[:300]
    if isinstance(body, Mapping):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, Mapping):
                return error_text(value)
            if isinstance(value, list) and value and isinstance(value[0], Mapping):
                return error_text(value[0].get("msg") or value[0])  # FastAPI validation errors
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:300]
    return " ".join(str(body).split())[:300]


def model_ids(listing: Any) -> list[str]:
    """Model ids from a ``GET /models`` answer (OpenAI's ``data``; Ollama's native ``models`` too)."""
    if not isinstance(listing, Mapping):
        return []
    entries = listing.get("data") or listing.get("models") or []
    ids = []
    for entry in entries:
        if isinstance(entry, Mapping):
            ident = entry.get("id") or entry.get("model") or entry.get("name")
            if ident:
                ids.append(str(ident))
    return ids


def model_entry(listing: Any, model: str) -> Mapping[str, Any]:
    if isinstance(listing, Mapping):
        for entry in listing.get("data") or []:
            if isinstance(entry, Mapping) and entry.get("id") == model:
                return entry
    return {}


def context_size(entry: Mapping[str, Any]) -> int:
    """The served context window: vLLM's ``max_model_len``, llama-server's ``meta.n_ctx``; 0 if unknown."""
    for value in (entry.get("max_model_len"), (entry.get("meta") or {}).get("n_ctx")):
        if isinstance(value, int) and value > 0:
            return value
    return 0


def match_model(wanted: str, listing: Any) -> str | None:
    """The server's id for ``wanted``: exact, an alias, Ollama's implicit ``:latest``, or a file name."""
    ids = model_ids(listing)
    if wanted in ids:
        return wanted
    if isinstance(listing, Mapping):
        for entry in listing.get("data") or []:
            if isinstance(entry, Mapping) and wanted in (entry.get("aliases") or ()):
                return str(entry["id"])
    for ident in ids:
        if ident == f"{wanted}:latest" or ident.rsplit("/", 1)[-1] == wanted:
            return ident
    return None
