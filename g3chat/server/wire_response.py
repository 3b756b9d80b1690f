"""g3chat's answer as OpenAI's ``chat.completion`` object and ``chat.completion.chunk`` stream.

Tool calls stream as OpenAI streams them: the first delta of a call carries its ``index``, ``id``, ``type``
and ``function.name`` (with empty arguments), later deltas only the ``index`` and a fragment of
``function.arguments``, so a client that concatenates what it receives assembles the name exactly once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from g3chat.core.types import ToolCallPart, Usage

ARGUMENT_FRAGMENT = 24  # characters of arguments per streamed delta


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage_json(usage: Usage | None) -> dict[str, Any]:
    """Token counts; ``cached_tokens`` are the prompt tokens the KV cache already held (or restored)."""
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    cached = max(0, usage.prompt_tokens - usage.prompt_eval_tokens)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def arguments_text(call: ToolCallPart) -> str:
    return json.dumps(call.arguments, ensure_ascii=False)


def tool_call_json(call: ToolCallPart) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments_text(call)},
    }


@dataclass
class Envelope:
    """What every object of one completion shares."""

    model: str
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))

    def completion(
        self, text: str, calls: Sequence[ToolCallPart], finish_reason: str, usage: Usage | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = [tool_call_json(c) for c in calls]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage_json(usage),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    def usage_chunk(self, usage: Usage | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(usage),
        }

    def call_chunks(self, index: int, call: ToolCallPart) -> Iterator[dict[str, Any]]:
        """One call as deltas: id and name first, then the arguments in fragments."""
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield self.chunk({"tool_calls": [head]})
        text = arguments_text(call)
        for start in range(0, len(text), ARGUMENT_FRAGMENT):
            piece = text[start : start + ARGUMENT_FRAGMENT]
            yield self.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def models_json(model: str, created: int, n_ctx: int) -> dict[str, Any]:
    entry = {
        "id": model,
        "object": "model",
        "created": created,
        "owned_by": "g3chat",
        "meta": {"n_ctx": n_ctx},
    }
    return {"object": "list", "data": [entry]}
