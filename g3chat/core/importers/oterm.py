"""oterm's SQLite store (``store.db``): ``chat`` rows (name, model, system prompt, parameters) and their
``message`` rows (``author``, ``text``, base64 ``images``), in order. oterm keeps no times and no
branches (a regenerated answer replaces the old one), so each chat is one branch and the import's time is
used. Images become one bracketed line.

oterm's chat ids restart at 1 in every store, so a chat is recognised on a second import by its id, model
and first message together.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

from g3chat.core.importers.model import ImportedConversation, ImportedMessage, tidy
from g3chat.core.types import Part, Role, TextPart

USER_AUTHORS = ("user", "me")  # oterm 0.9 wrote "me" and "ollama"


def read(db: sqlite3.Connection) -> list[ImportedConversation]:
    chat_columns = {r[1] for r in db.execute("PRAGMA table_info(chat)")}
    message_columns = {r[1] for r in db.execute("PRAGMA table_info(message)")}
    out = []
    for chat in db.execute("SELECT * FROM chat ORDER BY id"):
        rows = db.execute("SELECT * FROM message WHERE chat_id = ? ORDER BY id", (chat["id"],)).fetchall()
        if not rows:
            continue
        messages: list[ImportedMessage] = []
        for row in rows:
            role: Role = "user" if row["author"] in USER_AUTHORS else "assistant"
            parts: list[Part] = [TextPart(row["text"] or "")]
            images = _images(row["images"]) if "images" in message_columns else []
            if images:
                size = sum(len(b) * 3 // 4 for b in images)  # base64: 4 characters for 3 bytes
                shown = f"{size // 1024} KB" if size >= 1024 else f"{size} bytes"
                plural = "s" if len(images) > 1 else ""
                parts.append(TextPart(f"[{len(images)} image{plural}, {shown} (not imported)]"))
            parent = messages[-1].key if messages else None
            messages.append(ImportedMessage(str(row["id"]), parent, role, parts, model=None))
        model = chat["model"] or None
        for m in messages:
            if m.role == "assistant":
                m.model = model
        fingerprint = hashlib.sha256(f"{chat['id']}\0{model}\0{rows[0]['text']}".encode()).hexdigest()[:16]
        params = _params(chat["parameters"]) if "parameters" in chat_columns else {}
        out.append(
            tidy(
                ImportedConversation(
                    source_id=f"{chat['id']}:{fingerprint}",
                    title=chat["name"] or "",
                    messages=messages,
                    current=messages[-1].key,
                    model=model,
                    system_prompt=(chat["system"] if "system" in chat_columns else None) or "",
                    params=params,
                )
            )
        )
    return out


def _images(value: object) -> list[str]:
    try:
        images = json.loads(value) if isinstance(value, str) else []
    except json.JSONDecodeError:
        return []
    return [i for i in images if isinstance(i, str)] if isinstance(images, list) else []


def _params(value: object) -> dict[str, object]:
    """The settings g3chat also has: temperature, top_p, max_tokens."""
    try:
        raw = json.loads(value) if isinstance(value, str) else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, object] = {
        k: raw[k] for k in ("temperature", "top_p") if isinstance(raw.get(k), (int, float))
    }
    max_tokens = raw.get("max_tokens", raw.get("num_predict"))  # num_predict: Ollama's name (oterm < 0.15)
    if type(max_tokens) is int and max_tokens > 0:
        out["max_tokens"] = max_tokens
    return out
