"""llm's logs.db, as llm itself wrote it: 0.36's threads (with a fork) and the older responses tables."""

from __future__ import annotations

from pathlib import Path

from g3chat.core.importers import import_file
from g3chat.core.store import Store
from tests.fixtures.imports import fixture_file


def test_llm_036_threads_forks_fragments_and_attachments(tmp_path: Path) -> None:
    store = Store(":memory:")
    report = import_file(store, fixture_file("llm-0.36.db.gz", tmp_path))
    by_title = {c.title: c for c in report.imported}
    assert len(by_title) == 4
    assert {"What is a river?", "Rivers flow downhill. Summarise", "Name a long river"} < set(by_title)

    river = store.get_conversation(by_title["What is a river?"].conversation_id)
    assert by_title["What is a river?"].branches == 2 and river.system_prompt == "Be brief."
    shown = store.messages(river.id)  # the original thread is selected, not the fork
    assert [m.text for m in shown if m.role == "user"] == ["What is a river?", "And a lake?"]
    assert shown[1].model == "echo" and shown[1].completion_tokens and shown[1].created_at.startswith("20")
    fork = store.siblings(shown[2].id)
    assert [m.text for m in fork] == ["And a lake?", "And a sea?"]
    assert store.path_to(store.latest_leaf(fork[1].id))[-1].text == "Salt water, mostly."

    summarise = store.messages(by_title["Rivers flow downhill. Summarise"].conversation_id)
    prompt = summarise[0].text.split("\n\n")
    assert prompt[:2] == ["Rivers flow downhill.", "Summarise"]  # the fragment's text put back
    assert prompt[2].startswith("[attachment: image/png, ") and prompt[2].endswith(
        "pixel.png (not imported)]"
    )


def test_tool_calls_and_reasoning(tmp_path: Path) -> None:
    """A tool call, its result and the answer after it are one assistant message; reasoning is kept aside."""
    store = Store(":memory:")
    report = import_file(store, fixture_file("llm-0.36.db.gz", tmp_path))
    tools = next(c for c in report.imported if c.title.startswith('{"prompt": "add 1 and 2"'))
    question, answer = store.messages(tools.conversation_id)
    blocks = answer.text.split("\n\n")
    assert blocks[1:3] == ['[tool call: add({"a": 1, "b": 2})]', "[tool result from add: 3]"]
    assert '"prompt": "add 1 and 2"' in blocks[0] and blocks[3].startswith("{")
    assert "consider the prompt" not in answer.text and "consider the prompt" in answer.meta["reasoning"]
    assert question.role == "user" and answer.model == "echo"


def test_older_responses_in_the_same_file(tmp_path: Path) -> None:
    store = Store(":memory:")
    report = import_file(store, fixture_file("llm-0.36.db.gz", tmp_path))
    legacy = next(c for c in report.imported if c.title == "Name a long river")
    conversation = store.get_conversation(legacy.conversation_id)
    assert conversation.system_prompt == "You are a geographer." and conversation.model == "echo"
    assert [m.text for m in store.messages(legacy.conversation_id) if m.role == "user"] == [
        "Name a long river",
        "Which continent?",
    ]


def test_llm_027_conversations_and_responses(tmp_path: Path) -> None:
    store = Store(":memory:")
    report = import_file(store, fixture_file("llm-0.27.db.gz", tmp_path))
    assert [(c.title, c.messages) for c in report.imported] == [("Name a long river", 4)]
    messages = store.messages(report.imported[0].conversation_id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert '"prompt": "Which continent?"' in messages[3].text  # the echo model's answer
    assert messages[0].created_at < messages[2].created_at and messages[1].prompt_tokens == 4
