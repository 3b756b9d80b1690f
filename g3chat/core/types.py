"""Messages, content parts, generation parameters and engine events: the vocabulary of the core.

A message's content is a list of typed parts, stored as JSON, so that attachments and tool calls fit in
later without a schema change. Parts of a type this version does not know are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"

    def to_json(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class OpaquePart:
    """A part of a type this version does not understand; preserved verbatim, never sent to a model."""

    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data.get("type", "unknown"))

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)


Part = TextPart | OpaquePart


def part_from_json(data: dict[str, Any]) -> Part:
    if data.get("type") == "text" and isinstance(data.get("text"), str):
        return TextPart(data["text"])
    return OpaquePart(dict(data))


def parts_to_json(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [p.to_json() for p in parts]


def parts_from_json(items: Iterable[dict[str, Any]]) -> list[Part]:
    return [part_from_json(item) for item in items]


@dataclass(frozen=True)
class Message:
    """One chat message as the engine sees it."""

    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def text_message(cls, role: Role, text: str) -> Message:
        return cls(role, (TextPart(text),))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


def user(text: str) -> Message:
    return Message.text_message("user", text)


def assistant(text: str) -> Message:
    return Message.text_message("assistant", text)


def system(text: str) -> Message:
    return Message.text_message("system", text)


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and length settings for one turn. Defaults are Gemma 3n's recommended values."""

    temperature: float = 1.0
    top_k: int = 64
    top_p: float = 0.95
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
        }


# ----------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TextDelta:
    """New answer text. Always whole UTF-8 characters; never contains stop text."""

    text: str


@dataclass(frozen=True)
class PromptProgress:
    """Prompt evaluation progress, reported between batches of a long prompt."""

    done: int
    total: int


@dataclass(frozen=True)
class Usage:
    """Token counts and timings for the finished turn.

    ``prompt_tokens`` is the whole rendered prompt; ``prompt_eval_tokens`` is how many of those were
    actually evaluated this turn (the rest came from the KV cache). ``estimated`` is True when the counts
    are g3chat's estimate rather than the engine's (a server that does not report usage).
    """

    prompt_tokens: int
    completion_tokens: int
    prompt_eval_tokens: int
    ttft_s: float | None
    decode_tokens_per_s: float | None
    prompt_eval_s: float
    total_s: float
    restored_tokens: int = 0  # prompt tokens brought back from a saved KV state instead of evaluated
    drafted_tokens: int = 0  # speculative decoding: tokens guessed ...
    accepted_tokens: int = 0  # ... and kept because the model agreed
    estimated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "prompt_eval_tokens": self.prompt_eval_tokens,
        }


@dataclass(frozen=True)
class Finished:
    reason: FinishReason
    error: str | None = None


EngineEvent = TextDelta | PromptProgress | Usage | Finished


@dataclass
class TurnResult:
    """What a consumer accumulates from one stream of events."""

    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    error: str | None = None
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def feed(self, event: EngineEvent) -> None:
        if isinstance(event, TextDelta):
            self.chunks.append(event.text)
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finished):
            self.finish_reason = event.reason
            self.error = event.error


def collect(events: Iterable[EngineEvent]) -> TurnResult:
    result = TurnResult()
    for event in events:
        result.feed(event)
    return result
