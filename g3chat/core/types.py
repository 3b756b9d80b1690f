"""Messages, content parts, generation parameters and engine events: the vocabulary of the core.

A message's content is a list of typed parts, stored as JSON, so that attachments and tool calls fit in
later without a schema change. Parts of a type this version does not know are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


MediaKind = Literal["image", "audio", "text_file"]
MEDIA_KINDS: tuple[str, ...] = ("image", "audio", "text_file")


@dataclass(frozen=True)
class AttachmentPart:
    """An image, audio clip or text file stored content-addressed in the data dir (see
    g3chat.core.media.store).

    ``path`` is the stored file (normalized: RGB PNG/JPEG for images, 16 kHz mono 16-bit WAV for audio,
    UTF-8 for text), ``name`` the file name the user attached. A video attachment becomes one image part
    per sampled frame, each with the video's name as ``source`` and the frame's time in seconds as
    ``timestamp``. A text file (``text_file``, from ``@path``; see g3chat.core.media.textfile) is read by
    the model as text: ``chars`` is how many characters were kept, ``original_size`` the file's size in
    bytes when it was cut.
    """

    kind: MediaKind
    name: str
    mime: str
    path: str
    sha256: str
    size: int
    width: int | None = None  # images
    height: int | None = None
    sample_rate: int | None = None  # audio
    duration_s: float | None = None
    source: str | None = None  # video frames: the video's file name ...
    timestamp: float | None = None  # ... and the frame's time in seconds
    chars: int | None = None  # text files: characters kept ...
    original_size: int | None = None  # ... and the file's size in bytes when it was cut

    @property
    def type(self) -> str:
        return self.kind

    @property
    def label(self) -> str:
        """How people see it: ``cat.png``, ``clip.mp4 @ 0:03``."""
        if self.source is not None and self.timestamp is not None:
            minutes, seconds = divmod(int(self.timestamp), 60)
            return f"{self.source} @ {minutes}:{seconds:02d}"
        return self.name

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind}
        for name in _ATTACHMENT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttachmentPart | None:
        """None when ``data`` is not a well-formed attachment (it is then kept as an OpaquePart)."""
        kind = data.get("type")
        required = ("name", "mime", "path", "sha256")
        if kind not in MEDIA_KINDS or not all(isinstance(data.get(k), str) for k in required):
            return None
        if not isinstance(data.get("size"), int):
            return None
        values: dict[str, Any] = {name: data.get(name) for name in _ATTACHMENT_FIELDS}
        return cls(kind=kind, **values)


_ATTACHMENT_FIELDS = (
    "name", "mime", "path", "sha256", "size", "width", "height", "sample_rate", "duration_s", "source",
    "timestamp", "chars", "original_size",
)  # fmt: skip


@dataclass(frozen=True)
class ToolCallPart:
    """A tool call the model made: ``id`` ties it to its :class:`ToolResultPart`."""

    id: str
    name: str
    arguments: dict[str, Any]
    type: Literal["tool_call"] = "tool_call"

    def to_json(self) -> dict[str, Any]:
        return {"type": "tool_call", "id": self.id, "name": self.name, "arguments": self.arguments}


ToolStatus = Literal["ok", "error", "denied"]


@dataclass(frozen=True)
class ToolResultPart:
    """What a tool call returned (or why it did not run), sent back to the model in a user turn."""

    call_id: str
    name: str
    content: str
    status: ToolStatus = "ok"
    type: Literal["tool_result"] = "tool_result"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "tool_result",
            "call_id": self.call_id,
            "name": self.name,
            "content": self.content,
            "status": self.status,
        }


Part = TextPart | AttachmentPart | ToolCallPart | ToolResultPart | OpaquePart


def part_from_json(data: dict[str, Any]) -> Part:
    kind = data.get("type")
    if kind == "text" and isinstance(data.get("text"), str):
        return TextPart(data["text"])
    if kind in MEDIA_KINDS:
        attachment = AttachmentPart.from_json(data)
        if attachment is not None:
            return attachment
    if (
        kind == "tool_call"
        and isinstance(data.get("name"), str)
        and isinstance(data.get("arguments"), dict)
        and isinstance(data.get("id", ""), str)
    ):
        return ToolCallPart(data.get("id", ""), data["name"], dict(data["arguments"]))
    if (
        kind == "tool_result"
        and isinstance(data.get("content"), str)
        and data.get("status", "ok") in ("ok", "error", "denied")
    ):
        return ToolResultPart(
            str(data.get("call_id", "")), str(data.get("name", "")), data["content"], data.get("status", "ok")
        )
    return OpaquePart(dict(data))


def parts_to_json(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [p.to_json() for p in parts]


def parts_from_json(items: Iterable[dict[str, Any]]) -> list[Part]:
    return [part_from_json(item) for item in items]


@dataclass(frozen=True)
class Message:
    """One chat message as the engine sees it.

    ``tokens``: for an answer, the token ids the model generated for it (kept with the saved message).
    The engine reuses them when it renders the answer again, as far as they spell its text, so the prompt
    holds exactly the tokens the KV cache already has instead of a re-tokenization that may differ.
    """

    role: Role
    parts: tuple[Part, ...]
    tokens: tuple[int, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def text_message(cls, role: Role, text: str) -> Message:
        return cls(role, (TextPart(text),))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def attachments(self) -> tuple[AttachmentPart, ...]:
        return tuple(p for p in self.parts if isinstance(p, AttachmentPart))


def user(text: str, attachments: Sequence[AttachmentPart] = ()) -> Message:
    """A user message: its attachments first (Gemma reads the image before the question), then text."""
    parts: list[Part] = list(attachments)
    if text or not parts:
        parts.append(TextPart(text))
    return Message("user", tuple(parts))


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
    # Constrained decoding: a GBNF grammar (root rule ``root``) the output must follow. With
    # ``grammar_triggers`` (regular expressions, ECMAScript syntax) the grammar is lazy: output is free
    # until the text generated so far matches a trigger, then the grammar applies from the match on.
    grammar: str | None = None
    grammar_triggers: tuple[str, ...] = ()

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
    """Prompt evaluation progress, reported between batches of a long prompt.

    ``stage`` is ``"preamble"`` while the part every new conversation starts with (the system prompt and
    the tools' description) is evaluated, which happens once per model and settings (it is saved and
    restored afterwards), and ``"prompt"`` for the rest.
    """

    done: int
    total: int
    stage: Literal["preamble", "prompt"] = "prompt"


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
    completion_ids: tuple[int, ...] = field(default=(), repr=False)  # the generated token ids, in order
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
