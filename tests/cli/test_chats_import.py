"""`g3chat chats import FILE`, run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g3chat.core.store import Store
from tests.conftest import run_cli
from tests.fixtures.imports import fixture_file


def test_import_then_again(g3chat_home: Path, tmp_path: Path) -> None:
    export = fixture_file("chatgpt-conversations.json", tmp_path)
    proc = run_cli("chats", "import", str(export))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "imported 1: Picnic plans (7 messages, 3 branches)",
        "imported 2: Haiku (2 messages)",
        f"2 conversations imported from ChatGPT export {export}",
    ]
    listed = [json.loads(line)["title"] for line in run_cli("chats", "list", "--json").stdout.splitlines()]
    assert sorted(listed) == ["Haiku", "Picnic plans"]
    again = run_cli("chats", "import", str(export))
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"0 conversations imported from ChatGPT export {export}; 2 imported before"
    ]
    assert len(Store(g3chat_home / "data" / "history.db").list_conversations()) == 2


def test_json_summary(g3chat_home: Path, tmp_path: Path) -> None:
    proc = run_cli("chats", "import", "--json", str(fixture_file("llm-0.36.db.gz", tmp_path)))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["source"] == "llm" and summary["skipped"] == 0 and summary["messages"] == 14
    assert sorted((c["title"], c["messages"], c["branches"]) for c in summary["imported"]) == [
        ("Name a long river", 4, 1),
        ("Rivers flow downhill. Summarise", 2, 1),
        ("What is a river?", 6, 2),
        ('{"prompt": "add 1 and 2", "tool…', 2, 1),
    ]


def test_not_a_history_file_is_one_line_exit_2(g3chat_home: Path, tmp_path: Path) -> None:
    history = g3chat_home / "data" / "history.db"
    Store(history).close()
    for path in (tmp_path / "notes.txt", history, tmp_path / "missing.json"):
        if path.suffix == ".txt":
            path.write_text("not history\n")
        proc = run_cli("chats", "import", str(path))
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.startswith(f"g3chat: {path}: ") and len(proc.stderr.splitlines()) == 1
    assert Store(history).list_conversations() == []


@pytest.mark.model
def test_an_imported_conversation_continues_on_its_current_branch(
    cli_env: dict[str, str], g3chat_home: Path, tmp_path: Path
) -> None:
    assert (
        run_cli("chats", "import", str(fixture_file("chatgpt-conversations.json", tmp_path))).returncode == 0
    )
    store = Store(g3chat_home / "data" / "history.db")
    leaf = store.get_conversation(1).current_leaf
    proc = run_cli("ask", "--json", "-n", "1", "--chat", "1", "And drinks?", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["conversation_id"] == 1 and answer["usage"]["prompt_tokens"] > 40  # the history went along
    branch = store.messages(1)
    assert [m.text for m in branch[-2:-1]] == ["And drinks?"] and branch[-3].id == leaf
