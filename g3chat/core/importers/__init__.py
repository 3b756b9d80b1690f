"""Bring other chat programs' history into the store: ``g3chat chats import FILE``.

:func:`read_file` looks at what the file is (not at its name): a ChatGPT data export (``conversations.json``,
the export's zip or its unzipped folder), an ``llm`` ``logs.db`` (llm 0.36's threads and the older
responses, both in one file), or oterm's ``store.db``. :func:`import_file` writes what it read in one
transaction, skipping each conversation an earlier import already brought in.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

from g3chat.core.errors import InputError
from g3chat.core.importers import chatgpt, llm_legacy, llm_threads, oterm
from g3chat.core.importers.model import ImportedConversation, ImportSource
from g3chat.core.importers.writer import ImportReport, write
from g3chat.core.store import Store

__all__ = ["ImportReport", "ImportSource", "ImportedConversation", "import_file", "read_file", "write"]

SQLITE_MAGIC = b"SQLite format 3\x00"
KNOWN = "a ChatGPT export (conversations.json), an llm logs.db or an oterm store.db"


def import_file(store: Store, path: Path) -> ImportReport:
    """Read ``path`` and add what it holds to ``store``: everything, or (on any error) nothing."""
    return write(store, read_file(path))


def read_file(path: Path) -> ImportSource:
    if path.is_dir() and (path / "conversations.json").is_file():  # ChatGPT's export, unzipped
        path = path / "conversations.json"
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head == SQLITE_MAGIC:
        return _read_sqlite(path)
    if head.startswith(b"PK"):
        return _read_zip(path)
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InputError(f"{path}: not {KNOWN}") from None
    if not chatgpt.looks_like_export(data):
        raise InputError(f"{path}: JSON, but not a ChatGPT export (a list of conversations with a 'mapping')")
    return chatgpt.read(data, path.name)


def _read_zip(path: Path) -> ImportSource:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"]
            if not names:
                raise InputError(f"{path}: a zip without conversations.json: not a ChatGPT export")
            data = json.loads(archive.read(min(names, key=len)))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InputError(f"{path}: not {KNOWN}") from None
    if not chatgpt.looks_like_export(data):
        raise InputError(f"{path}: its conversations.json is not a ChatGPT export")
    return chatgpt.read(data, f"{path.name}:conversations.json")


def _read_sqlite(path: Path) -> ImportSource:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot open: {exc}") from None
    db.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if {"threads", "turns", "messages", "parts"} <= tables:
            threads = llm_threads.read(db)
            thread_ids = {r[0] for r in db.execute("SELECT id FROM threads")}
            legacy = llm_legacy.read(db, skip=thread_ids) if "responses" in tables else []
            return ImportSource("llm", "llm logs.db", threads + legacy)
        if {"responses", "conversations"} <= tables:
            return ImportSource("llm", "llm logs.db", llm_legacy.read(db))
        message_columns = {r[1] for r in db.execute("PRAGMA table_info(message)")}
        if "chat" in tables and {"chat_id", "author", "text"} <= message_columns:
            return ImportSource("oterm", "oterm store", oterm.read(db))
    except (sqlite3.Error, ValueError, TypeError, KeyError, IndexError) as exc:
        raise InputError(f"{path}: cannot read it: {exc}") from None
    finally:
        db.close()
    raise InputError(f"{path}: an SQLite database, but not an llm logs.db or an oterm store.db")
