"""What every importer produces: conversations as trees of plain messages, before they reach the store.

Each source has its own shape (ChatGPT's node mapping, llm's content-addressed message chains, oterm's flat
rows); the importers turn them into :class:`ImportedConversation` and :func:`tidy` gives every tree the
same clean-up: empty nodes (ChatGPT's hidden roots, a tool call with nothing to show) are dropped with
their children re-attached above, and a message that only continues its parent's turn (an answer after a
code-interpreter run, a tool result) is folded into it, so the imported chat alternates as a chat does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from g3chat.core.chat import title_for
from g3chat.core.types import Part, Role, TextPart


@dataclass
class ImportedMessage:
    key: str  # the source's id for this node, unique within the conversation
    parent: str | None
    role: Role
    parts: list[Part]
    created_at: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportedConversation:
    source_id: str  # stable id in the source: what makes a second import of the same file add nothing
    title: str
    messages: list[ImportedMessage]  # every branch, a parent before its children
    current: str | None  # key of the branch's leaf to show
    created_at: str | None = None
    updated_at: str | None = None
    model: str | None = None
    system_prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportSource:
    kind: str  # "chatgpt" | "llm" | "oterm": the key of the imports table, with each source_id
    label: str  # how people call it: "ChatGPT export"
    conversations: list[ImportedConversation]


def iso_time(value: object) -> str | None:
    """A source's timestamp (epoch seconds, or ISO 8601 with or without a zone: UTC then) in the store's
    format, so that times compare as text; None when there is none or it cannot be read."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            when = datetime.fromtimestamp(float(value), timezone.utc)
        elif isinstance(value, str) and value.strip():
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def one_line(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def tidy(conversation: ImportedConversation) -> ImportedConversation:
    """Drop empty messages, fold same-role continuations into their parent (see the module doc), and
    name an untitled conversation by its first question."""
    by_key = {m.key: m for m in conversation.messages}
    kept = {m.key for m in conversation.messages if any(_shows(p) for p in m.parts)}

    def kept_parent(key: str | None) -> str | None:
        while key is not None and key not in kept:
            key = by_key[key].parent if key in by_key else None
        return key

    children: dict[str | None, list[str]] = {}
    for m in conversation.messages:
        if m.key in kept:
            children.setdefault(kept_parent(m.parent), []).append(m.key)

    rep: dict[str, str] = {}  # a kept message -> the message it now lives in
    out: dict[str, ImportedMessage] = {}
    stack = list(reversed(children.get(None, [])))
    while stack:
        key = stack.pop()
        m = by_key[key]
        parent = kept_parent(m.parent)
        target = out[rep[parent]] if parent is not None else None
        if target is not None and parent is not None and len(children[parent]) == 1 and target.role == m.role:
            _append(target.parts, m.parts)
            target.model = m.model or target.model
            target.completion_tokens = m.completion_tokens or target.completion_tokens
            if m.meta.get("reasoning"):
                target.meta["reasoning"] = "\n\n".join(
                    filter(None, (target.meta.get("reasoning"), m.meta["reasoning"]))
                )
            rep[key] = target.key
        else:
            parent_key = rep[parent] if parent is not None else None
            parts: list[Part] = []
            _append(parts, m.parts)
            out[key] = ImportedMessage(
                key, parent_key, m.role, parts, m.created_at, m.model,
                m.prompt_tokens, m.completion_tokens, dict(m.meta),
            )  # fmt: skip
            rep[key] = key
        stack.extend(reversed(children.get(key, [])))
    leaf = kept_parent(conversation.current)
    conversation.messages = list(out.values())
    conversation.current = rep[leaf] if leaf is not None else None
    if not conversation.title.strip():  # untitled: named by how it starts, as g3chat names a new chat
        first = next((m for m in conversation.messages if m.role == "user"), None)
        text = "".join(p.text for p in first.parts if isinstance(p, TextPart)) if first else ""
        conversation.title = title_for(text)
    return conversation


def _shows(part: Part) -> bool:
    return not isinstance(part, TextPart) or bool(part.text.strip())


def _append(parts: list[Part], more: list[Part]) -> None:
    """Add ``more`` to ``parts``; text meeting text becomes one part, a blank line between."""
    for part in more:
        if parts and isinstance(part, TextPart) and isinstance(parts[-1], TextPart):
            parts[-1] = TextPart(f"{parts[-1].text.rstrip()}\n\n{part.text.lstrip()}")
        else:
            parts.append(part)
