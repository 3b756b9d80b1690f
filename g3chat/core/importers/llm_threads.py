"""Simon Willison's ``llm`` (0.36): ``logs.db``'s message store (threads, turns, messages, parts).

Messages are content-addressed (``hash``, ``parent_hash``) and shared: a thread names its tip, a fork is a
second thread (``forked_from``) pointing into the same tree. A thread and its forks become one
conversation with a branch per thread, the original thread's branch selected. Messages carry no time of
their own; each gets the time of the first turn whose chain holds it (as llm's ``message_tree`` view does).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from g3chat.core.importers.model import ImportedConversation, ImportedMessage, iso_time, one_line, tidy
from g3chat.core.types import Part, Role, TextPart


def read(db: sqlite3.Connection) -> list[ImportedConversation]:
    threads = {r["id"]: r for r in db.execute("SELECT * FROM threads ORDER BY datetime_utc, id")}
    groups: dict[str, list[sqlite3.Row]] = {}
    for thread in threads.values():
        groups.setdefault(_origin(thread["id"], threads), []).append(thread)
    messages = {r["hash"]: r for r in db.execute("SELECT hash, parent_hash, role FROM messages")}
    times, turns = _turn_facts(db, messages)
    out = []
    for origin, members in groups.items():
        conversation = _conversation(db, threads[origin], members, messages, times, turns)
        if conversation.messages:
            out.append(tidy(conversation))
    return out


def _origin(thread_id: str, threads: dict[str, sqlite3.Row]) -> str:
    seen = {thread_id}
    while (parent := threads[thread_id]["forked_from"]) in threads and parent not in seen:
        thread_id = parent
        seen.add(thread_id)
    return thread_id


def _chain(tip: str | None, messages: dict[str, sqlite3.Row]) -> list[str]:
    """Hashes from the root down to ``tip``."""
    chain: list[str] = []
    while tip is not None and tip in messages and tip not in chain:
        chain.append(tip)
        tip = messages[tip]["parent_hash"]
    return chain[::-1]


def _turn_facts(
    db: sqlite3.Connection, messages: dict[str, sqlite3.Row]
) -> tuple[dict[str, str], dict[str, sqlite3.Row]]:
    """Each message's earliest turn time, and the turn that produced each message (by its tip)."""
    times: dict[str, str] = {}
    produced: dict[str, sqlite3.Row] = {}
    for turn in db.execute("SELECT * FROM turns ORDER BY datetime_utc, id"):
        when = iso_time(turn["datetime_utc"])
        produced.setdefault(turn["tip_message_hash"], turn)
        for key in _chain(turn["tip_message_hash"], messages):
            if when is not None and key not in times:
                times[key] = when
    return times, produced


def _conversation(
    db: sqlite3.Connection,
    origin: sqlite3.Row,
    members: list[sqlite3.Row],
    messages: dict[str, sqlite3.Row],
    times: dict[str, str],
    turns: dict[str, sqlite3.Row],
) -> ImportedConversation:
    order: list[str] = []
    for thread in members:  # the original thread first, then its forks: each adds what it does not share
        order.extend(h for h in _chain(thread["tip_message_hash"], messages) if h not in order)
    parts = _parts(db, order)
    imported: list[ImportedMessage] = []
    system: list[str] = []
    for key in order:
        row = messages[key]
        role: Role = row["role"] if row["role"] in ("system", "user") else "assistant"
        message_parts, meta = parts.get(key, ([], {}))
        if role == "system" and row["parent_hash"] is None:  # the system prompt is the tree's root
            system.extend(p.text for p in message_parts if isinstance(p, TextPart))
            message_parts = []
        turn = turns.get(key)
        imported.append(
            ImportedMessage(
                key=key,
                parent=row["parent_hash"],
                role=role,
                parts=message_parts,
                created_at=times.get(key),
                model=(turn["resolved_model"] or turn["model"]) if turn is not None else None,
                prompt_tokens=turn["input_tokens"] if turn is not None else None,
                completion_tokens=turn["output_tokens"] if turn is not None else None,
                meta=meta,
            )
        )
    models = [m.model for m in imported if m.model]
    stamps = [m.created_at for m in imported if m.created_at]
    started = iso_time(origin["datetime_utc"])
    stamps += [started] if started else []
    return ImportedConversation(
        source_id=origin["id"],
        title=origin["name"] or "",
        messages=imported,
        current=origin["tip_message_hash"],
        created_at=min(stamps) if stamps else None,
        updated_at=max(stamps) if stamps else None,
        model=models[-1] if models else None,
        system_prompt="\n\n".join(system),
    )


def _parts(db: sqlite3.Connection, hashes: list[str]) -> dict[str, tuple[list[Part], dict[str, Any]]]:
    out: dict[str, tuple[list[Part], dict[str, Any]]] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT * FROM parts WHERE message_hash IN ({marks}) ORDER BY message_hash, position", chunk
        )
        for row in rows:
            parts, meta = out.setdefault(row["message_hash"], ([], {}))
            payload = json.loads(row["payload"]) if row["payload"] else {}
            kind = row["type"]
            if kind in ("text", "reasoning"):
                text = row["text"] if row["text"] is not None else _text_ref(db, payload)
                if kind == "reasoning":
                    meta["reasoning"] = (
                        (meta.get("reasoning", "") + text) if text else meta.get("reasoning", "")
                    )
                else:
                    parts.append(TextPart(text))
            elif kind == "tool_call":
                arguments = json.dumps(payload.get("arguments") or {}, ensure_ascii=False)
                parts.append(TextPart(f"[tool call: {row['tool_name']}({one_line(arguments, 60)})]"))
            elif kind == "tool_result":
                parts.append(
                    TextPart(
                        f"[tool result from {row['tool_name']}: {one_line(str(payload.get('output', '')))}]"
                    )
                )
            elif kind == "attachment":
                parts.append(TextPart(_attachment(db, (payload.get("attachment") or {}).get("id"))))
            else:
                parts.append(TextPart(f"[{kind}]"))
    return out


def _text_ref(db: sqlite3.Connection, payload: dict[str, Any]) -> str:
    """Text that borrows fragments: literals and fragment contents, in order."""
    pieces = []
    for piece in payload.get("text_ref") or []:
        if "literal" in piece:
            pieces.append(str(piece["literal"]))
        else:
            row = db.execute(
                "SELECT content FROM fragments WHERE id = ?", (piece.get("fragment"),)
            ).fetchone()
            pieces.append(row[0] if row else "")
    return "".join(pieces) if pieces else str(payload.get("text", ""))


def _attachment(db: sqlite3.Connection, attachment_id: object) -> str:
    row = db.execute("SELECT type, path, url FROM attachments WHERE id = ?", (attachment_id,)).fetchone()
    if row is None:
        return "[attachment (not imported)]"
    where = row["path"] or row["url"] or ""
    return f"[attachment: {row['type'] or 'file'}{', ' + where if where else ''} (not imported)]"
