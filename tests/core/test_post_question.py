"""The user's message is committed the same way by `ask` and the chat UI: a new conversation is titled
from it (its words, or its attachments' names), an untitled one takes its title, a titled one keeps it."""

from __future__ import annotations

from pathlib import Path

from g3chat.core.chat import TITLE_LENGTH, post_question
from g3chat.core.store import Store
from g3chat.core.types import AttachmentPart, user


def clip(name: str, source: str | None = None) -> AttachmentPart:
    return AttachmentPart("image", name, "image/png", f"/media/{name}", "0" * 64, 10, source=source)


def test_a_new_conversation_is_titled_from_the_first_words(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    message = post_question(
        store, None, user("  How do\n I  fry an egg? " + "x" * 80), model="m", system_prompt="be brief"
    )
    conversation = store.get_conversation(message.conversation_id)
    assert conversation.title.startswith("How do I fry an egg? x") and len(conversation.title) == TITLE_LENGTH
    assert (conversation.model, conversation.system_prompt) == ("m", "be brief")
    assert [m.id for m in store.messages(conversation.id)] == [message.id]


def test_attachments_alone_title_it_by_their_names(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    frames = [clip("f1.png", source="clip.mp4"), clip("f2.png", source="clip.mp4"), clip("cat.png")]
    message = post_question(store, None, user("", frames))
    assert store.get_conversation(message.conversation_id).title == "clip.mp4, cat.png"


def test_an_untitled_conversation_takes_the_title_and_a_titled_one_keeps_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    untitled = store.create_conversation(system_prompt="set first")  # e.g. settings changed before a word
    post_question(store, untitled.id, user("first words"))
    assert store.get_conversation(untitled.id).title == "first words"
    second = post_question(store, untitled.id, user("second words"))
    assert store.get_conversation(untitled.id).title == "first words"
    assert [m.text for m in store.messages(untitled.id)] == ["first words", "second words"]
    assert second.parent_id is not None
