"""Conversation history in SQLite (stdlib sqlite3, WAL).

Messages form a tree (``parent_id``) so that an edited question or a regenerated answer becomes a new
branch instead of overwriting the old one; a conversation's ``current_leaf`` names the branch shown.
Content is a JSON list of typed parts. The schema version lives in ``PRAGMA user_version`` and each
migration (g3chat.core.store_schema) runs in one transaction, so a failure leaves the database as it was.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from g3chat.core.errors import NotFoundError, StoreError
from g3chat.core.search import SEARCH_SQL, SearchHit, fts_query
from g3chat.core.store_schema import MIGRATIONS, SCHEMA_VERSION
from g3chat.core.types import Message, Part, Role, TextPart, parts_from_json, parts_to_json

STATUSES = ("complete", "partial", "error")
_CURRENT_LEAF: Any = object()  # add_message default: append under the current leaf


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: str
    updated_at: str
    model: str | None
    system_prompt: str
    params: dict[str, Any]
    current_leaf: int | None
    message_count: int = 0


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    parent_id: int | None
    role: Role
    parts: tuple[Part, ...]
    model: str | None
    created_at: str
    status: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def shown_status(self) -> str:
        """``status``, except for an answer still marked as being written (see g3chat.core.checkpoint):
        ``streaming`` while its writer runs, ``interrupted`` once that process is gone."""
        writer = self.meta.get("writer")
        if not isinstance(writer, dict):
            return self.status
        from g3chat.core.checkpoint import writer_alive

        return "streaming" if writer_alive(writer) else "interrupted"

    def to_message(self) -> Message:
        ids = self.meta.get("token_ids") if self.role == "assistant" else None
        if isinstance(ids, list) and ids and all(type(t) is int for t in ids):
            return Message(self.role, self.parts, tuple(ids))
        return Message(self.role, self.parts)


class Store:
    """The history database. Safe to share between the UI thread and one worker thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._tx_depth = 0
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the history database: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._tx_depth:  # inside transaction(): the outer transaction commits or rolls back
                self._tx_depth += 1
                try:
                    yield self._db
                finally:
                    self._tx_depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._tx_depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._tx_depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group many calls into one transaction: all of them are kept, or (on an exception) none."""
        with self._tx():
            yield

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer g3chat (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        for target in range(version, SCHEMA_VERSION):
            with self._tx() as db:
                MIGRATIONS[target](db)
                db.execute(f"PRAGMA user_version = {target + 1}")

    # -------------------------------------------------------------------------------- conversations

    def _conversation(self, row: sqlite3.Row) -> Conversation:
        return Conversation(
            id=row["id"],
            title=row["title"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            model=row["model"],
            system_prompt=row["system_prompt"],
            params=json.loads(row["params"] or "{}"),
            current_leaf=row["current_leaf"],
            message_count=row["message_count"],
        )

    _CONVERSATION_SQL = (
        "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count "
        "FROM conversations c"
    )

    def create_conversation(
        self,
        title: str = "",
        *,
        model: str | None = None,
        system_prompt: str = "",
        params: dict[str, Any] | None = None,
        created_at: str | None = None,
        updated_at: str | None = None,
    ) -> Conversation:
        """A new conversation; ``created_at``, ``updated_at`` (ISO 8601, UTC: imports) default to now."""
        created = created_at or _now()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model, system_prompt, params) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (title, created, updated_at or created, model, system_prompt, json.dumps(params or {})),
            )
            conversation_id = int(cur.lastrowid or 0)
        return self.get_conversation(conversation_id)

    def get_conversation(self, conversation_id: int) -> Conversation:
        rows = self._query(f"{self._CONVERSATION_SQL} WHERE c.id = ?", (conversation_id,))
        if not rows:
            raise NotFoundError(f"no conversation with id {conversation_id}")
        return self._conversation(rows[0])

    def list_conversations(self, limit: int | None = None) -> list[Conversation]:
        sql = f"{self._CONVERSATION_SQL} ORDER BY c.updated_at DESC, c.id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._conversation(r) for r in self._query(sql)]

    def latest_conversation(self) -> Conversation | None:
        found = self.list_conversations(limit=1)
        return found[0] if found else None

    def update_conversation(self, conversation_id: int, **changes: Any) -> Conversation:
        allowed = {"title", "model", "system_prompt", "params", "current_leaf"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        self.get_conversation(conversation_id)
        if "params" in changes:
            changes["params"] = json.dumps(changes["params"] or {})
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._tx() as db:
            db.execute(
                f"UPDATE conversations SET {assignments}, updated_at = ? WHERE id = ?",
                (*changes.values(), _now(), conversation_id),
            )
        return self.get_conversation(conversation_id)

    def rename_conversation(self, conversation_id: int, title: str) -> Conversation:
        return self.update_conversation(conversation_id, title=title)

    def delete_conversation(self, conversation_id: int) -> None:
        self.get_conversation(conversation_id)
        with self._tx() as db:
            db.execute("UPDATE conversations SET current_leaf = NULL WHERE id = ?", (conversation_id,))
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ------------------------------------------------------------------------------------- messages

    def _message(self, row: sqlite3.Row) -> StoredMessage:
        return StoredMessage(
            id=row["id"],
            conversation_id=row["conversation_id"],
            parent_id=row["parent_id"],
            role=row["role"],
            parts=tuple(parts_from_json(json.loads(row["content"]))),
            model=row["model"],
            created_at=row["created_at"],
            status=row["status"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            error=row["error"],
            meta=json.loads(row["meta"] or "{}"),
        )

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        parts: Sequence[Part] | str,
        *,
        parent_id: int | None = _CURRENT_LEAF,
        model: str | None = None,
        status: str = "complete",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        error: str | None = None,
        meta: dict[str, Any] | None = None,
        created_at: str | None = None,
    ) -> StoredMessage:
        """Append a message (by default under the conversation's current leaf) and make it the leaf.

        ``created_at`` (imports) keeps a past time: the conversation's updated time then only moves forward.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if isinstance(parts, str):
            parts = (TextPart(parts),)
        conversation = self.get_conversation(conversation_id)
        parent = conversation.current_leaf if parent_id is _CURRENT_LEAF else parent_id
        now = created_at or _now()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, model, created_at, status, "
                "prompt_tokens, completion_tokens, error, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    parent,
                    role,
                    json.dumps(parts_to_json(parts), ensure_ascii=False),
                    model,
                    now,
                    status,
                    prompt_tokens,
                    completion_tokens,
                    error,
                    json.dumps(meta or {}),
                ),
            )
            message_id = int(cur.lastrowid or 0)
            db.execute(
                "UPDATE conversations SET current_leaf = ?, updated_at = max(updated_at, ?) WHERE id = ?",
                (message_id, now, conversation_id),
            )
        return self.get_message(message_id)

    def get_message(self, message_id: int) -> StoredMessage:
        rows = self._query("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise NotFoundError(f"no message with id {message_id}")
        return self._message(rows[0])

    def update_message(
        self,
        message_id: int,
        *,
        parts: Sequence[Part] | str | None = None,
        status: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        error: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Change a message in place; ``meta`` replaces the whole meta."""
        changes: dict[str, Any] = {}
        if parts is not None:
            if isinstance(parts, str):
                parts = (TextPart(parts),)
            changes["content"] = json.dumps(parts_to_json(parts), ensure_ascii=False)
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}")
            changes["status"] = status
        for name, value in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
            if value is not None:
                changes[name] = value
        if error is not None:
            changes["error"] = error
        if meta is not None:
            changes["meta"] = json.dumps(meta)
        if changes:
            assignments = ", ".join(f"{name} = ?" for name in changes)
            with self._tx() as db:
                db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), message_id))
        return self.get_message(message_id)

    def checkpoint_message(self, message_id: int, text: str, completion_tokens: int) -> None:
        """Rewrite a streaming answer's text: one small transaction (see g3chat.core.checkpoint)."""
        content = json.dumps(parts_to_json((TextPart(text),)), ensure_ascii=False)
        with self._tx() as db:
            db.execute(
                "UPDATE messages SET content = ?, completion_tokens = ? WHERE id = ?",
                (content, completion_tokens, message_id),
            )

    def path_to(self, message_id: int | None) -> list[StoredMessage]:
        """Messages from the root down to ``message_id`` (one branch of the tree)."""
        if message_id is None:
            return []
        rows = self._query(
            """
            WITH RECURSIVE chain(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM messages WHERE id = ?
                UNION ALL
                SELECT m.id, m.parent_id, chain.depth + 1 FROM messages m JOIN chain ON m.id = chain.parent_id
            )
            SELECT messages.* FROM messages JOIN chain ON messages.id = chain.id ORDER BY chain.depth DESC
            """,
            (message_id,),
        )
        return [self._message(r) for r in rows]

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The conversation's current branch, oldest first."""
        return self.path_to(self.get_conversation(conversation_id).current_leaf)

    def all_messages(self, conversation_id: int) -> list[StoredMessage]:
        """Every message of every branch, in insertion order."""
        self.get_conversation(conversation_id)
        rows = self._query("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [self._message(r) for r in rows]

    def history(self, conversation_id: int) -> list[Message]:
        """The current branch as engine messages, the conversation's system prompt first."""
        conversation = self.get_conversation(conversation_id)
        out: list[Message] = []
        if conversation.system_prompt.strip():
            out.append(Message.text_message("system", conversation.system_prompt))
        for m in self.path_to(conversation.current_leaf):
            said_nothing = not m.text.strip() and all(isinstance(p, TextPart) for p in m.parts)
            if m.status != "complete" and said_nothing:
                continue  # a failed or cut-off turn that said nothing: an empty answer would teach silence
            out.append(m.to_message())
        return out

    # ------------------------------------------------------------------------------------- branches

    def set_current_leaf(self, conversation_id: int, message_id: int | None) -> None:
        """Show the branch ending at ``message_id`` (without touching the conversation's updated time)."""
        if message_id is not None and self.get_message(message_id).conversation_id != conversation_id:
            raise NotFoundError(f"message {message_id} is not in conversation {conversation_id}")
        with self._tx() as db:
            db.execute(
                "UPDATE conversations SET current_leaf = ? WHERE id = ?", (message_id, conversation_id)
            )

    def siblings(self, message_id: int) -> list[StoredMessage]:
        """The message and its alternatives (same parent, same conversation), oldest first."""
        m = self.get_message(message_id)
        rows = self._query(
            "SELECT * FROM messages WHERE conversation_id = ? AND parent_id IS ? ORDER BY id",
            (m.conversation_id, m.parent_id),
        )
        return [self._message(r) for r in rows]

    def latest_leaf(self, message_id: int) -> int:
        """The newest message below ``message_id`` (or itself): the end of its most recent branch.

        Children are always newer than their parents, so the newest message of a subtree is a leaf.
        """
        rows = self._query(
            """
            WITH RECURSIVE sub(id) AS (
                SELECT id FROM messages WHERE id = ?
                UNION ALL
                SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id
            )
            SELECT max(id) FROM sub
            """,
            (message_id,),
        )
        if rows[0][0] is None:
            raise NotFoundError(f"no message with id {message_id}")
        return int(rows[0][0])

    def branch_positions(self, conversation_id: int) -> dict[int, tuple[int, int]]:
        """For every message with alternatives: (its 1-based position among its siblings, their count)."""
        rows = self._query(
            "SELECT id, parent_id FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        groups: dict[int | None, list[int]] = {}
        for row in rows:
            groups.setdefault(row["parent_id"], []).append(row["id"])
        return {
            mid: (index + 1, len(ids))
            for ids in groups.values()
            if len(ids) > 1
            for index, mid in enumerate(ids)
        }

    # -------------------------------------------------------------------------------------- imports

    def imported_conversation(self, source: str, source_id: str) -> int | None:
        """The conversation an earlier import made from ``source_id`` of ``source``, if it is still here."""
        rows = self._query(
            "SELECT conversation_id FROM imports WHERE source = ? AND source_id = ?", (source, source_id)
        )
        return int(rows[0][0]) if rows else None

    def record_import(self, source: str, source_id: str, conversation_id: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO imports (source, source_id, conversation_id, imported_at) VALUES (?, ?, ?, ?)",
                (source, source_id, conversation_id, _now()),
            )

    # --------------------------------------------------------------------------------------- search

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Messages of every conversation whose text matches all the words of ``text``, best first."""
        query = fts_query(text)
        if query is None:
            return []
        return [SearchHit.from_row(r) for r in self._query(SEARCH_SQL, (query, int(limit)))]
