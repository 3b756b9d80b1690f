"""Full-text search (FTS5, migration 2) and branch navigation in the history store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from g3chat.core import store as store_module
from g3chat.core.errors import NotFoundError
from g3chat.core.search import MARK_END, MARK_START, fts_query
from g3chat.core.store import SCHEMA_VERSION, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "h.db")


def test_search_finds_words_across_conversations_with_snippets(store: Store) -> None:
    a = store.create_conversation("Python")
    store.add_message(a.id, "user", "How do I sort a list?")
    answer = store.add_message(a.id, "assistant", "Use sorted(items); it returns a new list.")
    b = store.create_conversation("Cooking")
    store.add_message(b.id, "user", "A recipe for crêpes with a sorted list of ingredients")
    hits = store.search("sorted list")
    assert {(h.conversation_id, h.message_id) for h in hits} >= {(a.id, answer.id)}
    assert {h.conversation_title for h in hits} == {"Python", "Cooking"}
    first = next(h for h in hits if h.message_id == answer.id)
    assert f"{MARK_START}sorted{MARK_END}" in first.snippet
    assert first.plain_snippet() == "Use sorted(items); it returns a new list."
    assert [h.conversation_title for h in store.search("crepes")] == ["Cooking"]  # diacritics folded
    assert [h.conversation_title for h in store.search("ingred")] == ["Cooking"]  # last word: a prefix


def test_search_input_is_never_fts_syntax(store: Store) -> None:
    c = store.create_conversation()
    store.add_message(c.id, "user", 'Is "AND" NEAR(x) a C++ keyword?')
    for text in ['"', "AND", "NEAR(", "c++ *", "-x", "a OR"]:
        store.search(text)  # no sqlite3.OperationalError
    assert len(store.search("near c")) == 1
    assert store.search("   ") == [] and fts_query("!!") is None


def test_index_follows_edits_and_deletes(store: Store) -> None:
    c = store.create_conversation()
    m = store.add_message(c.id, "user", "original wording")
    store.update_message(m.id, parts="replacement text")
    assert store.search("original") == [] and len(store.search("replacement")) == 1
    store.delete_conversation(c.id)
    assert store.search("replacement") == []


def test_migration_2_indexes_an_existing_version_1_database(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "old.db"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    old = Store(path)
    c = old.create_conversation("from before")
    old.add_message(c.id, "user", "a message written before search existed")
    old.close()
    monkeypatch.undo()
    upgraded = Store(path)
    assert upgraded.schema_version() == SCHEMA_VERSION >= 2
    assert [h.conversation_title for h in upgraded.search("before search")] == ["from before"]
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"message_fts", "message_fts_insert"} <= tables


def test_siblings_latest_leaf_and_positions(store: Store) -> None:
    c = store.create_conversation()
    q1 = store.add_message(c.id, "user", "q1")
    a1 = store.add_message(c.id, "assistant", "a1")
    q2 = store.add_message(c.id, "user", "q2")
    a2 = store.add_message(c.id, "assistant", "a2")
    a1b = store.add_message(c.id, "assistant", "a1 again", parent_id=q1.id)
    q1b = store.add_message(c.id, "user", "q1 edited", parent_id=None)
    assert [m.id for m in store.siblings(a1.id)] == [a1.id, a1b.id]
    assert [m.id for m in store.siblings(q1.id)] == [q1.id, q1b.id]
    assert store.latest_leaf(a1.id) == a2.id  # the newest message under a1 ends its branch
    assert store.latest_leaf(q1.id) == a1b.id
    assert store.latest_leaf(q2.id) == a2.id
    positions = store.branch_positions(c.id)
    assert positions == {q1.id: (1, 2), q1b.id: (2, 2), a1.id: (1, 2), a1b.id: (2, 2)}
    store.set_current_leaf(c.id, a2.id)
    assert [m.text for m in store.messages(c.id)] == ["q1", "a1", "q2", "a2"]
    other = store.create_conversation()
    with pytest.raises(NotFoundError):
        store.set_current_leaf(other.id, a2.id)
    with pytest.raises(NotFoundError):
        store.latest_leaf(9999)
