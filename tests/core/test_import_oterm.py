"""oterm's store.db, written by oterm's own Store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from g3chat.core.importers import import_file
from g3chat.core.store import Store
from tests.fixtures.imports import fixture_file


def test_chats_system_prompt_parameters_and_images(tmp_path: Path) -> None:
    store = Store(":memory:")
    report = import_file(store, fixture_file("oterm-0.26.db.gz", tmp_path))
    assert [(c.title, c.messages) for c in report.imported] == [
        ("Bread", 2),
        ("Hi", 2),
    ]  # untitled: its start
    bread = store.get_conversation(report.imported[0].conversation_id)
    assert bread.system_prompt == "You are a baker." and bread.model == "llama3.2"
    assert bread.params == {"temperature": 0.4, "max_tokens": 64}
    question, answer = store.messages(bread.id)
    assert question.text == "How long to knead?\n\n[1 image, 69 bytes (not imported)]"
    assert answer.role == "assistant" and answer.text == "About ten minutes." and answer.model == "llama3.2"


def test_another_store_with_the_same_chat_ids_is_imported_too(tmp_path: Path) -> None:
    """oterm's ids restart at 1 in every store: a chat is known by its id, model and first message."""
    store = Store(":memory:")
    first = fixture_file("oterm-0.26.db.gz", tmp_path)
    assert len(import_file(store, first).imported) == 2
    other = tmp_path / "other" / "store.db"
    other.parent.mkdir()
    other.write_bytes(first.read_bytes())
    with sqlite3.connect(other) as db:
        db.execute(
            "UPDATE message SET text = 'Bonjour' WHERE id = (SELECT min(id) FROM message WHERE chat_id = 2)"
        )
    again = import_file(store, other)
    assert [c.title for c in again.imported] == ["Bonjour"] and len(again.skipped) == 1


def test_oterm_09_authors_and_ollama_parameter_names(tmp_path: Path) -> None:
    store = Store(":memory:")
    report = import_file(store, fixture_file("oterm-0.9.db.gz", tmp_path))
    assert [(c.title, c.messages) for c in report.imported] == [("Old times", 2)]
    chat = store.get_conversation(report.imported[0].conversation_id)
    assert chat.system_prompt == "Be nice." and chat.params == {"temperature": 0.2, "max_tokens": 32}
    assert [(m.role, m.text) for m in store.messages(chat.id)] == [
        ("user", "Hello from 2024"),
        ("assistant", "Hello!"),
    ]
