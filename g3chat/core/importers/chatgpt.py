"""ChatGPT's data export (``conversations.json``, alone or in the export's zip).

Each conversation is a ``mapping`` of nodes (``parent``/``children``, a ``message`` or null for the root)
and a ``current_node``: the leaf of the branch the user last saw. Every branch is kept. Text stays text;
what is not (images, code-interpreter runs and their output, browsing, quotes) becomes one bracketed line,
and the model's hidden reasoning is left out. Leading system messages and the user's custom instructions
become the conversation's system prompt.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from g3chat.core.errors import InputError
from g3chat.core.importers.model import (
    ImportedConversation,
    ImportedMessage,
    ImportSource,
    iso_time,
    one_line,
    tidy,
)
from g3chat.core.types import Part, Role, TextPart

HIDDEN_CONTENT = ("thoughts", "reasoning_recap", "model_editable_context")


def looks_like_export(data: object) -> bool:
    return isinstance(data, list) and all(
        isinstance(c, dict) and isinstance(c.get("mapping"), dict) for c in data
    )


def read(data: list[dict[str, Any]], name: str) -> ImportSource:
    conversations = []
    for index, raw in enumerate(data, 1):
        try:
            conversations.append(tidy(_conversation(raw)))
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise InputError(f"{name}: conversation {index} is not in ChatGPT's format ({exc})") from None
    return ImportSource("chatgpt", "ChatGPT export", conversations)


def _conversation(raw: dict[str, Any]) -> ImportedConversation:
    mapping: dict[str, Any] = raw["mapping"]
    source_id = raw.get("conversation_id") or raw.get("id")
    if not isinstance(source_id, str) or not source_id:
        source_id = "sha256:" + hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:32]
    children: dict[str | None, list[str]] = {}
    for key, node in mapping.items():
        parent = node.get("parent")
        children.setdefault(parent if parent in mapping else None, []).append(key)
    for key, node in mapping.items():  # siblings in the order ChatGPT lists them (the order they were made)
        order = {child: i for i, child in enumerate(node.get("children") or [])}
        children.get(key, []).sort(key=lambda child: order.get(child, len(order)))

    messages: list[ImportedMessage] = []
    system: list[str] = []
    stack: list[tuple[str, str | None, bool]] = [(k, None, True) for k in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:  # parents before children; a node in a parent cycle is never reached
        key, parent, leading = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        message = _message(key, parent, mapping[key].get("message"))
        if message is not None and leading and message.role == "system":
            system.extend(p.text for p in message.parts if isinstance(p, TextPart) and p.text.strip())
            message.parts = []
        leading = leading and (message is None or not message.parts)
        messages.append(message or ImportedMessage(key, parent, "system", []))
        stack.extend((child, key, leading) for child in reversed(children.get(key, [])))
    return ImportedConversation(
        source_id=source_id,
        title=str(raw.get("title") or ""),
        messages=messages,
        current=raw.get("current_node")
        if raw.get("current_node") in seen
        else (messages[-1].key if messages else None),
        created_at=iso_time(raw.get("create_time")),
        updated_at=iso_time(raw.get("update_time")),
        model=raw.get("default_model_slug") or None,
        system_prompt="\n\n".join(system),
    )


def _message(key: str, parent: str | None, raw: dict[str, Any] | None) -> ImportedMessage | None:
    if not raw:
        return None
    author = (raw.get("author") or {}).get("role")
    content = raw.get("content") or {}
    kind = content.get("content_type", "text")
    metadata = raw.get("metadata") or {}
    role: Role = "user" if author == "user" else "system" if author == "system" else "assistant"
    parts: list[Part] = []
    if kind == "user_editable_context":  # custom instructions: what ChatGPT puts in its system prompt
        role = "system"
        text = "\n\n".join(str(content[k]) for k in ("user_profile", "user_instructions") if content.get(k))
        parts = [TextPart(text)]
    elif not metadata.get("is_visually_hidden_from_conversation") and kind not in HIDDEN_CONTENT:
        parts = [TextPart(_text(kind, content, raw))]
    return ImportedMessage(
        key=key,
        parent=parent,
        role=role,
        parts=parts,
        created_at=iso_time(raw.get("create_time")),
        model=metadata.get("model_slug") if role == "assistant" else None,
        meta={"source_id": raw.get("id") or key},
    )


def _text(kind: str, content: dict[str, Any], raw: dict[str, Any]) -> str:
    """A message's content as text: text parts as they are, anything else as one bracketed line."""
    recipient = raw.get("recipient")
    if kind == "text" and recipient not in (None, "all"):  # a plugin or tool call: its arguments
        return f"[call to {recipient}: {one_line(''.join(str(p) for p in content.get('parts') or []))}]"
    if kind in ("text", "multimodal_text"):
        return "\n\n".join(_part_text(p) for p in content.get("parts") or [] if p not in ("", None))
    text = str(content.get("text") or "")
    if kind == "code":
        lines = text.splitlines()
        language = content.get("language") if content.get("language") not in (None, "", "unknown") else None
        language = language or raw.get("recipient") or "code"
        return f"[code ({language}, {len(lines)} lines): {one_line(lines[0] if lines else '')}]"
    if kind == "execution_output":
        return f"[code output: {one_line(text) or 'nothing'}]"
    if kind == "tether_quote":
        return f"[quote: {one_line(str(content.get('title') or content.get('url') or text))}]"
    if kind == "tether_browsing_display":
        return f"[browsing: {one_line(str(content.get('summary') or content.get('result') or ''))}]"
    if kind == "system_error":
        return f"[error: {one_line(str(content.get('text') or content.get('name') or ''))}]"
    return f"[{kind}: {one_line(text)}]" if text else f"[{kind}]"


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return f"[{type(part).__name__}]"
    kind = str(part.get("content_type") or "part")
    if kind == "audio_transcription" and part.get("text"):
        return str(part["text"])
    if kind == "image_asset_pointer":
        size = f"{part['width']}x{part['height']}, " if part.get("width") and part.get("height") else ""
        return f"[image: {size}{part.get('asset_pointer', '')} (not imported)]"
    return f"[{kind.removesuffix('_asset_pointer')} (not imported)]"
