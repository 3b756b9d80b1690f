"""``llm``'s older log tables (before 0.36, and still in an upgraded ``logs.db``): ``conversations`` and
``responses``, one row per prompt and its answer, in order. A conversation llm 0.36 also keeps as a thread
(same id) is read from the thread instead. Fragments are put back into the prompt and system prompt as llm
sent them (fragments first); attachments become one bracketed line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from g3chat.core.importers.model import ImportedConversation, ImportedMessage, iso_time, tidy
from g3chat.core.types import Part, TextPart


def read(db: sqlite3.Connection, skip: Collection[str] = ()) -> list[ImportedConversation]:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {r[1] for r in db.execute("PRAGMA table_info(responses)")}
    names = (
        {r["id"]: r for r in db.execute("SELECT * FROM conversations")} if "conversations" in tables else {}
    )
    order = "datetime_utc, id" if "datetime_utc" in columns else "rowid"
    groups: dict[str, list[sqlite3.Row]] = {}
    for row in db.execute(f"SELECT * FROM responses ORDER BY {order}"):
        key = row["conversation_id"] if "conversation_id" in columns else None
        groups.setdefault(key or f"response:{row['id']}", []).append(row)
    out = []
    for source_id, responses in groups.items():
        if source_id in skip:
            continue
        head = names.get(source_id)
        out.append(tidy(_conversation(db, tables, columns, source_id, head, responses)))
    return out


def _conversation(
    db: sqlite3.Connection,
    tables: set[str],
    columns: set[str],
    source_id: str,
    head: sqlite3.Row | None,
    responses: list[sqlite3.Row],
) -> ImportedConversation:
    messages: list[ImportedMessage] = []
    system_prompt: str | None = None
    parent: str | None = None
    for row in responses:
        when = iso_time(row["datetime_utc"]) if "datetime_utc" in columns else None
        system = _joined(
            [*_fragments(db, tables, "system_fragments", row["id"]), row["system"] or ""], "\n\n"
        )
        if system_prompt is None:
            system_prompt = system
        elif system and system != system_prompt:  # the system prompt changed mid-conversation
            messages.append(
                ImportedMessage(f"{row['id']}:system", parent, "system", [TextPart(system)], when)
            )
            parent = messages[-1].key
        fragments = _fragments(db, tables, "prompt_fragments", row["id"])
        prompt = "\n".join(fragments + ([row["prompt"]] if row["prompt"] else []))
        user_parts: list[Part] = [TextPart(prompt), *_attachments(db, tables, row["id"])]
        messages.append(ImportedMessage(f"{row['id']}:prompt", parent, "user", user_parts, when))
        model = (row["resolved_model"] if "resolved_model" in columns else None) or row["model"]
        messages.append(
            ImportedMessage(
                f"{row['id']}:response",
                f"{row['id']}:prompt",
                "assistant",
                [TextPart(row["response"] or "")],
                when,
                model=model,
                prompt_tokens=row["input_tokens"] if "input_tokens" in columns else None,
                completion_tokens=row["output_tokens"] if "output_tokens" in columns else None,
            )
        )
        parent = messages[-1].key
    stamps = [m.created_at for m in messages if m.created_at]
    title = (head["name"] if head is not None else None) or ""
    return ImportedConversation(
        source_id=source_id,
        title=title,
        messages=messages,
        current=parent,
        created_at=min(stamps) if stamps else None,
        updated_at=max(stamps) if stamps else None,
        model=(head["model"] if head is not None else None) or responses[-1]["model"],
        system_prompt=system_prompt or "",
    )


def _joined(bits: list[str], separator: str) -> str:
    return separator.join(b.strip() for b in bits if b and b.strip())


def _fragments(db: sqlite3.Connection, tables: set[str], link: str, response_id: str) -> list[str]:
    if link not in tables or "fragments" not in tables:
        return []
    rows = db.execute(
        f"SELECT f.content FROM {link} l JOIN fragments f ON f.id = l.fragment_id "
        f'WHERE l.response_id = ? ORDER BY l."order"',
        (response_id,),
    )
    return [str(r[0] or "") for r in rows]


def _attachments(db: sqlite3.Connection, tables: set[str], response_id: str) -> list[Part]:
    if "prompt_attachments" not in tables or "attachments" not in tables:
        return []
    rows = db.execute(
        "SELECT a.type, a.path, a.url FROM prompt_attachments l JOIN attachments a ON a.id = l.attachment_id "
        'WHERE l.response_id = ? ORDER BY l."order"',
        (response_id,),
    )
    parts: list[Part] = []
    for r in rows:
        where = r["path"] or r["url"] or ""
        parts.append(
            TextPart(f"[attachment: {r['type'] or 'file'}{', ' + where if where else ''} (not imported)]")
        )
    return parts
