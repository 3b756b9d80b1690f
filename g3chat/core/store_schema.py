"""The history database's schema, as ordered migrations: ``MIGRATIONS[n]`` upgrades a database at
``PRAGMA user_version`` n to n + 1 (g3chat.core.store runs each in one transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction (``executescript`` would commit first)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _migration_1(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE conversations (
            id            INTEGER PRIMARY KEY,
            title         TEXT NOT NULL DEFAULT '',
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            model         TEXT,
            system_prompt TEXT NOT NULL DEFAULT '',
            params        TEXT NOT NULL DEFAULT '{}',
            current_leaf  INTEGER REFERENCES messages(id) ON DELETE SET NULL
        );
        CREATE TABLE messages (
            id                INTEGER PRIMARY KEY,
            conversation_id   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id         INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content           TEXT NOT NULL,
            model             TEXT,
            created_at        TEXT NOT NULL,
            status            TEXT NOT NULL DEFAULT 'complete'
                              CHECK (status IN ('complete', 'partial', 'error')),
            prompt_tokens     INTEGER,
            completion_tokens INTEGER,
            error             TEXT,
            meta              TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_by_parent ON messages(parent_id);
        CREATE INDEX conversations_by_update ON conversations(updated_at);
        """,
    )


# A message's searchable text: its text parts joined (the same as StoredMessage.text).
_TEXT_OF = (
    "(SELECT coalesce(group_concat(json_extract(p.value, '$.text'), ''), '') FROM json_each({}) AS p "
    "WHERE json_extract(p.value, '$.type') = 'text')"
)


def _migration_2(db: sqlite3.Connection) -> None:
    """Full-text search: an FTS5 index of every message's text, kept in step by triggers."""
    db.execute(
        "CREATE VIRTUAL TABLE message_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')"
    )
    # Trigger bodies contain ';', so each statement is executed on its own.
    db.execute(
        "CREATE TRIGGER message_fts_insert AFTER INSERT ON messages BEGIN "
        f"INSERT INTO message_fts (rowid, body) VALUES (new.id, {_TEXT_OF.format('new.content')}); END"
    )
    db.execute(
        "CREATE TRIGGER message_fts_update AFTER UPDATE OF content ON messages BEGIN "
        "DELETE FROM message_fts WHERE rowid = old.id; "
        f"INSERT INTO message_fts (rowid, body) VALUES (new.id, {_TEXT_OF.format('new.content')}); END"
    )
    db.execute(
        "CREATE TRIGGER message_fts_delete AFTER DELETE ON messages BEGIN "
        "DELETE FROM message_fts WHERE rowid = old.id; END"
    )
    db.execute(f"INSERT INTO message_fts (rowid, body) SELECT id, {_TEXT_OF.format('content')} FROM messages")


def _migration_3(db: sqlite3.Connection) -> None:
    """What ``g3chat chats import`` brought in: one row per source conversation, so a second import of the
    same file adds nothing. Deleting the conversation forgets the row (importing again restores it)."""
    db.execute(
        "CREATE TABLE imports ("
        " source TEXT NOT NULL, source_id TEXT NOT NULL,"
        " conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
        " imported_at TEXT NOT NULL, PRIMARY KEY (source, source_id))"
    )
    db.execute("CREATE INDEX imports_by_conversation ON imports(conversation_id)")


# Ordered migrations: MIGRATIONS[n] upgrades a database at user_version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2, _migration_3]
SCHEMA_VERSION = len(MIGRATIONS)
