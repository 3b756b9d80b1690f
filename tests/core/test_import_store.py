"""Importing: the format is read from the content, a second import adds nothing, a failure keeps nothing."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest

from g3chat.core.errors import InputError
from g3chat.core.importers import import_file, read_file
from g3chat.core.store import Store
from tests.fixtures.imports import HERE, fixture_file


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [("chatgpt-conversations.json", "chatgpt"), ("llm-0.36.db.gz", "llm"), ("oterm-0.26.db.gz", "oterm")],
)
def test_detected_from_the_content_not_the_name(fixture: str, kind: str, tmp_path: Path) -> None:
    misleading = {"chatgpt": "logs.db", "llm": "conversations.json", "oterm": "logs.db"}[kind]
    assert read_file(fixture_file(fixture, tmp_path, as_name=misleading)).kind == kind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a ChatGPT export"),
        (b"hello\n", "not a ChatGPT export"),
        (b'{"mapping": {}}', "JSON, but not a ChatGPT export"),
        (b"PK\x03\x04 broken zip", "not a ChatGPT export"),
    ],
)
def test_other_files_are_one_clear_error(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_file(path)
    assert "\n" not in str(caught.value)


def test_a_g3chat_history_is_not_a_source(tmp_path: Path) -> None:
    Store(tmp_path / "history.db").close()
    with pytest.raises(
        InputError, match=r"an SQLite database, but not an llm logs\.db or an oterm store\.db"
    ):
        read_file(tmp_path / "history.db")


def test_a_second_import_adds_nothing_until_the_conversation_is_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path / "history.db")
    export = fixture_file("chatgpt-conversations.json", tmp_path)
    first = import_file(store, export)
    again = import_file(store, export)
    assert again.imported == [] and sorted(again.skipped) == sorted(c.source_id for c in first.imported)
    assert len(store.list_conversations()) == 2
    store.delete_conversation(first.imported[1].conversation_id)  # forgetting it lets it come back
    assert [c.title for c in import_file(store, export).imported] == ["Haiku"]


def test_a_failure_part_way_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "history.db")
    calls: list[str] = []

    def fail_on_the_second(source: str, source_id: str, conversation_id: int) -> None:
        calls.append(source_id)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        recorded(source, source_id, conversation_id)

    recorded = store.record_import
    monkeypatch.setattr(store, "record_import", fail_on_the_second)
    with pytest.raises(sqlite3.OperationalError):
        import_file(store, fixture_file("chatgpt-conversations.json", tmp_path))
    assert len(calls) == 2
    assert store.list_conversations() == [] and store.imported_conversation("chatgpt", calls[0]) is None
    assert (
        sqlite3.connect(tmp_path / "history.db").execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    )


def test_fixtures_are_small_and_compressed() -> None:
    for path in HERE.glob("*.gz"):
        assert path.stat().st_size < 16_000 and gzip.decompress(path.read_bytes())[:6] == b"SQLite"
