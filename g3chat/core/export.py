"""Conversation export as Markdown or JSON (headless; the CLI and the TUI both use it)."""

from __future__ import annotations

import json
from typing import Any

from g3chat.core.store import Conversation, StoredMessage
from g3chat.core.types import AttachmentPart, TextPart, ToolCallPart, ToolResultPart, parts_to_json

_ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System"}


def to_markdown(conversation: Conversation, messages: list[StoredMessage]) -> str:
    lines = [f"# {conversation.title or f'Conversation {conversation.id}'}", ""]
    meta = [f"created {conversation.created_at}"]
    if conversation.model:
        meta.append(f"model {conversation.model}")
    lines += [f"_{', '.join(meta)}_", ""]
    if conversation.system_prompt.strip():
        lines += ["## System", "", conversation.system_prompt.strip(), ""]
    for message in messages:
        title = _ROLE_TITLES.get(message.role, message.role)
        if message.parts and all(isinstance(p, ToolResultPart) for p in message.parts):
            title = "Tool results"
        status = message.shown_status
        if status != "complete":
            title += f" ({status})"
        lines += [f"## {title}", ""]
        for part in message.parts:
            if isinstance(part, TextPart):
                lines.append(part.text.strip())
            elif isinstance(part, AttachmentPart):
                lines.append(f"_[{part.kind}: {part.label}]_")
            elif isinstance(part, ToolCallPart):
                arguments = json.dumps(part.arguments, ensure_ascii=False)
                lines.append(f"**Tool call** `{part.name}` `{arguments}`")
            elif isinstance(part, ToolResultPart):
                fence = "~~~~" if "```" in part.content else "```"
                heading = f"**Tool result** `{part.name}` ({part.status})"
                lines += [heading, fence, part.content.rstrip(), fence]
            else:
                lines.append(f"_[{part.type} attachment]_")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_json(conversation: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        "messages": [
            {
                "id": m.id,
                "parent_id": m.parent_id,
                "role": m.role,
                "content": parts_to_json(m.parts),
                "model": m.model,
                "created_at": m.created_at,
                "status": m.shown_status,  # complete, partial, error, streaming or interrupted
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "error": m.error,
            }
            for m in messages
        ],
    }


def to_json_text(conversation: Conversation, messages: list[StoredMessage]) -> str:
    return json.dumps(to_json(conversation, messages), ensure_ascii=False, indent=2) + "\n"
