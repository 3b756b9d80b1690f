from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from g3chat.core.errors import NotFoundError, StoreError
from g3chat.core.store import SCHEMA_VERSION, Store
from g3chat.core.types import OpaquePart, TextPart


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "h.db")


def test_new_database_is_migrated_and_in_wal_mode(store: Store, tmp_path: Path) -> None:
    assert store.schema_version() == SCHEMA_VERSION >= 1
    mode = sqlite3.connect(tmp_path / "h.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_conversation_roundtrip(store: Store) -> None:
    c = store.create_conversation("First", model="m", system_prompt="be nice", params={"temperature": 0.5})
    u = store.add_message(c.id, "user", "hello")
    a = store.add_message(c.id, "assistant", "hi there", status="partial", completion_tokens=3)
    assert a.parent_id == u.id
    messages = store.messages(c.id)
    assert [(m.role, m.text, m.status) for m in messages] == [
        ("user", "hello", "complete"),
        ("assistant", "hi there", "partial"),
    ]
    again = store.get_conversation(c.id)
    assert again.current_leaf == a.id and again.message_count == 2 and again.params == {"temperature": 0.5}
    history = store.history(c.id)
    assert [m.role for m in history] == ["system", "user", "assistant"]


def test_branches_keep_old_path(store: Store) -> None:
    c = store.create_conversation("b")
    u1 = store.add_message(c.id, "user", "q1")
    a1 = store.add_message(c.id, "assistant", "a1")
    a1b = store.add_message(c.id, "assistant", "a1 regenerated", parent_id=u1.id)
    assert [m.text for m in store.messages(c.id)] == ["q1", "a1 regenerated"]
    assert [m.text for m in store.path_to(a1.id)] == ["q1", "a1"]
    assert len(store.all_messages(c.id)) == 3
    store.update_conversation(c.id, current_leaf=a1.id)
    assert [m.text for m in store.messages(c.id)] == ["q1", "a1"]
    assert a1b.parent_id == u1.id


def test_unknown_parts_survive(store: Store) -> None:
    c = store.create_conversation()
    parts = (TextPart("look"), OpaquePart({"type": "hologram", "uri": "x"}))
    m = store.add_message(c.id, "user", parts)
    assert store.get_message(m.id).parts == parts


def test_failed_empty_answers_are_left_out_of_history(store: Store) -> None:
    c = store.create_conversation()
    store.add_message(c.id, "user", "q")
    store.add_message(c.id, "assistant", "", status="error", error="boom")
    assert [m.role for m in store.history(c.id)] == ["user"]
    assert store.messages(c.id)[-1].error == "boom"


def test_update_and_delete(store: Store) -> None:
    c = store.create_conversation("x")
    m = store.add_message(c.id, "assistant", "part", status="partial")
    store.update_message(m.id, parts="part and more", status="complete", completion_tokens=9)
    got = store.get_message(m.id)
    assert (got.text, got.status, got.completion_tokens) == ("part and more", "complete", 9)
    store.rename_conversation(c.id, "renamed")
    assert store.get_conversation(c.id).title == "renamed"
    store.delete_conversation(c.id)
    with pytest.raises(NotFoundError):
        store.get_conversation(c.id)
    with pytest.raises(NotFoundError):
        store.get_message(m.id)


def test_list_is_most_recent_first(store: Store) -> None:
    a = store.create_conversation("a")
    b = store.create_conversation("b")
    store.add_message(a.id, "user", "bump")
    assert [c.title for c in store.list_conversations()] == ["a", "b"]
    assert store.latest_conversation().id == a.id
    assert b.id != a.id


def test_not_a_database_is_an_error_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="cannot open the history database"):
        Store(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer g3chat"):
        Store(path)


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from g3chat.core import store as store_module

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk on fire")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, broken])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(store_module.MIGRATIONS))
    path = tmp_path / "h.db"
    with pytest.raises(StoreError):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in tables and "messages" in tables


def test_missing_conversation(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no conversation with id 42"):
        store.messages(42)
