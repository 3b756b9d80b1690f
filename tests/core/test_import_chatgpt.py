"""ChatGPT's export: every branch kept, the current one selected, non-text parts as one line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from g3chat.core.errors import InputError
from g3chat.core.importers import import_file, read_file
from g3chat.core.store import Store
from g3chat.core.types import TextPart
from tests.fixtures.imports import fixture_file


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return fixture_file("chatgpt-conversations.json", tmp_path)


def test_branches_current_branch_and_times(export: Path) -> None:
    store = Store(":memory:")
    report = import_file(store, export)
    assert [(c.title, c.messages, c.branches) for c in report.imported] == [
        ("Picnic plans", 7, 3),
        ("Haiku", 2, 1),
    ]
    picnic = store.get_conversation(report.imported[0].conversation_id)
    assert picnic.model == "gpt-4o" and picnic.created_at == "2023-11-14T22:13:20.000000+00:00"
    assert picnic.system_prompt == "I live in Lyon.\n\nAnswer in English."  # the custom instructions
    shown = store.messages(picnic.id)
    assert [m.role for m in shown] == ["user", "assistant", "user", "assistant"]
    assert shown[2].text == "How many sandwiches for 6?"  # the edited question: the second branch is current
    assert shown[0].created_at == "2023-11-14T22:13:21.000000+00:00"
    edited = store.siblings(shown[2].id)
    assert next(m.text for m in edited).endswith("Is this spot good?")
    assert [m.text for m in store.siblings(shown[3].id)] == ["Six.", shown[3].text]  # the regenerated answer
    assert all(m.model == "gpt-4o" for m in shown if m.role == "assistant")


def test_non_text_parts_are_one_line_each(export: Path) -> None:
    store = Store(":memory:")
    picnic = import_file(store, export).imported[0].conversation_id
    texts = [m.text for m in store.all_messages(picnic)]
    image = next(t for t in texts if "image" in t)
    assert image.splitlines()[0] == "[image: 64x48, file-service://file-abc123 (not imported)]"
    answer = store.messages(picnic)[-1].text  # the code run and its output folded into the answer
    assert answer.split("\n\n") == [
        "Let me compute.",
        "[code (python, 2 lines): 6 * 2]",
        "[code output: 12]",
        "Twelve sandwiches.",
    ]


def test_a_visible_system_message_is_the_system_prompt(export: Path) -> None:
    store = Store(":memory:")
    haiku = import_file(store, export).imported[1].conversation_id
    assert store.get_conversation(haiku).system_prompt == "You write haiku."
    assert [m.role for m in store.all_messages(haiku)] == ["user", "assistant"]


def test_the_export_zip_and_its_folder(export: Path, tmp_path: Path) -> None:
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(export, "conversations.json")
        z.writestr("chat.html", "<html></html>")
    source = read_file(archive)
    assert source.kind == "chatgpt" and [c.title for c in source.conversations] == ["Picnic plans", "Haiku"]
    folder = tmp_path / "unzipped"
    folder.mkdir()
    (folder / "conversations.json").write_bytes(export.read_bytes())
    assert [c.title for c in read_file(folder).conversations] == ["Picnic plans", "Haiku"]


def test_a_plugin_call_is_one_line(export: Path) -> None:
    data = json.loads(export.read_text())
    answer = data[1]["mapping"]["a"]["message"]
    answer["recipient"] = "dalle.text2im"
    answer["content"]["parts"] = ['{\n  "prompt": "a maple leaf",\n  "size": "1024x1024"\n}']
    export.write_text(json.dumps(data))
    haiku = read_file(export).conversations[1]
    assert haiku.messages[1].parts[0] == TextPart(
        '[call to dalle.text2im: { "prompt": "a maple leaf", "size": "1024x1024" }]'
    )


def test_a_malformed_conversation_names_itself(export: Path) -> None:
    data = json.loads(export.read_text())
    data[1]["mapping"]["q"] = "not a node"
    export.write_text(json.dumps(data))
    with pytest.raises(InputError, match="conversation 2 is not in ChatGPT's format"):
        read_file(export)


def test_a_parent_cycle_or_a_missing_parent_does_not_hang(export: Path) -> None:
    data = json.loads(export.read_text())
    mapping = data[1]["mapping"]
    mapping["x"] = {"id": "x", "parent": "y", "children": ["y"], "message": None}
    mapping["y"] = {"id": "y", "parent": "x", "children": ["x"], "message": None}
    mapping["a"]["parent"] = "gone"  # an orphan becomes a root of its own
    export.write_text(json.dumps(data))
    haiku = read_file(export).conversations[1]
    assert [(m.role, m.parent) for m in haiku.messages] == [("user", None), ("assistant", None)]
    assert haiku.current == "a"
