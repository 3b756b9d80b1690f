"""Pilot flow tests of the chat UI with the scripted FakeEngine: what a person does, end to end, checked
against what the history database holds afterwards."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownFence

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.errors import ModelFileError
from g3chat.core.store import Store
from g3chat.tui.screens.confirm_screen import ConfirmScreen
from g3chat.tui.screens.edit_message_screen import EditMessageScreen
from g3chat.tui.widgets.message_view import MessageView
from tests.tui.conftest import SIZE, sent, wait_until

pytestmark = pytest.mark.asyncio

CODE_ANSWER = "Here is the code:\n\n```python\nprint('hi')\n```\n\nThat prints **hi**."


def views(app) -> list[MessageView]:
    return app.chat_screen.chat.messages()


def idle(app) -> bool:
    return app.model_state == "ready" and app.job is None and not app.queue


async def send(pilot, app, text: str) -> None:
    app.chat_screen.prompt.text = text
    app.chat_screen.prompt.focus()
    await pilot.press("enter")


async def send_and_wait(pilot, app, text: str) -> None:
    await wait_until(pilot, lambda: app.model_state == "ready")
    before = app.store.list_conversations()
    count = sum(c.message_count for c in before)
    await send(pilot, app, text)
    await wait_until(
        pilot, lambda: idle(app) and sum(c.message_count for c in app.store.list_conversations()) > count
    )
    await pilot.pause()


async def test_send_streams_markdown_and_saves(make_app, fake: FakeEngine, store: Store, monkeypatch) -> None:
    updates: list[str] = []
    appends: list[str] = []
    original_update, original_append = Markdown.update, Markdown.append

    def update(self: Markdown, md: str) -> object:
        updates.append(md)
        return original_update(self, md)

    def append(self: Markdown, md: str) -> object:
        appends.append(md)
        return original_append(self, md)

    monkeypatch.setattr(Markdown, "update", update)
    monkeypatch.setattr(Markdown, "append", append)
    fake.enqueue(list(CODE_ANSWER))  # one character per piece: many deltas
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "show me code")
        conversation = store.latest_conversation()
        assert conversation is not None and conversation.title == "show me code"
        saved = store.messages(conversation.id)
        assert [(m.role, m.text, m.status) for m in saved] == [
            ("user", "show me code", "complete"),
            ("assistant", CODE_ANSWER, "complete"),
        ]
        answer = views(app)[-1]
        assert answer.text == CODE_ANSWER and answer.message_id == saved[1].id
        fences = answer.markdown.query(MarkdownFence)
        assert len(fences) == 1 and "print('hi')" in fences[0].code
        assert fake.calls[-1][-1].text == "show me code"
        # Streamed with appends; the whole answer rendered once, at the end (never per token).
        assert "".join(appends) == CODE_ANSWER
        assert updates.count(CODE_ANSWER) == 1
        assert len([u for u in updates if u and u != CODE_ANSWER and u != "show me code"]) == 0
        assert "/4096" in str(app.chat_screen.header.query_one("#meter").render())


class GatedEngine(FakeEngine):
    """Loads only when the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def load(self):
        assert self.gate.wait(30)
        return super().load()


async def test_message_typed_while_loading_is_queued_not_lost(make_app, store: Store) -> None:
    slow = GatedEngine().enqueue("finally here")
    app = make_app(slow)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "are you there?")
        await pilot.pause()
        assert app.model_state == "loading"
        assert "loading" in str(app.chat_screen.header.query_one("#status").render())
        conversation = store.latest_conversation()
        assert conversation is not None
        assert [m.text for m in store.messages(conversation.id)] == ["are you there?"]  # saved already
        waiting = views(app)[-1]
        assert "waiting for the model" in waiting.pending
        assert slow.calls == []
        slow.gate.set()
        await wait_until(pilot, lambda: idle(app) and len(store.messages(conversation.id)) == 2)
        assert store.messages(conversation.id)[1].text == "finally here"
        assert not app.chat_screen.chat.query(".-waiting")


async def test_load_error_is_a_message_in_the_ui(make_app, store: Store) -> None:
    broken = FakeEngine()
    broken.load_error = ModelFileError("/models/x.gguf: not a GGUF file (bad magic)")
    app = make_app(broken)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "failed")
        await pilot.pause()
        notices = [str(n.render()) for n in app.chat_screen.chat.query(".notice")]
        assert any("not a GGUF file (bad magic)" in n for n in notices)
        assert "model failed to load" in str(app.chat_screen.header.query_one("#status").render())
        await send(pilot, app, "hello?")
        await pilot.pause()
        conversation = store.latest_conversation()
        assert conversation is not None and store.messages(conversation.id)[0].text == "hello?"
        assert "did not load" in views(app)[-1].pending
        assert app.is_running


async def test_escape_stops_and_keeps_the_partial_answer(make_app, store: Store) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    slow = FakeEngine(delay=0.02).enqueue(words)
    app = make_app(slow)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await send(pilot, app, "talk")
        await wait_until(pilot, lambda: app.job is not None and len(app.job.ui.text) > 20)
        await send(pilot, app, "typed while it answers")  # not sent while this chat answers, and not lost
        await pilot.pause()
        assert app.chat_screen.prompt.text == "typed while it answers"
        await pilot.press("escape")
        await wait_until(pilot, lambda: idle(app))
        conversation = store.latest_conversation()
        answer = store.messages(conversation.id)[-1]
        assert answer.role == "assistant" and answer.status == "partial"
        assert answer.meta["finish_reason"] == "cancelled"
        assert answer.text and words.startswith(answer.text) and answer.text != words
        shown = views(app)[-1]
        assert shown.has_class("-partial") and "partial" in shown._meta_text()
        assert shown.text == answer.text


async def test_regenerate_then_flip_between_answers(make_app, fake: FakeEngine, store: Store) -> None:
    fake.enqueue("first answer", "second answer")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "question")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: idle(app) and len(store.all_messages(1)) == 3)
        await pilot.pause()
        assert [m.text for m in store.messages(1)] == ["question", "second answer"]
        assert [v.text for v in views(app)] == ["question", "second answer"]
        assert views(app)[-1].branch == (2, 2)
        assert len(fake.calls) == 2 and fake.calls[1][-1].text == "question"
        await pilot.press("alt+left")
        await pilot.pause()
        assert [v.text for v in views(app)] == ["question", "first answer"]
        assert views(app)[-1].branch == (1, 2)
        assert [m.text for m in store.messages(1)] == ["question", "first answer"]  # persisted
        await pilot.press("alt+right")
        await pilot.pause()
        assert [v.text for v in views(app)] == ["question", "second answer"]


async def test_edit_an_earlier_message_branches_and_keeps_the_old_one(
    make_app, fake: FakeEngine, store: Store
) -> None:
    fake.enqueue("a1", "a2", "a1 edited")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "q1")
        await send_and_wait(pilot, app, "q2")
        first = views(app)[0]
        first.focus()
        await pilot.pause()
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, EditMessageScreen))
        app.screen.query_one("TextArea").text = "q1 edited"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: idle(app) and len(store.all_messages(1)) == 6)
        await pilot.pause()
        assert [m.text for m in store.messages(1)] == ["q1 edited", "a1 edited"]
        assert [m.text for m in sent(fake)] == ["q1 edited"]  # re-run from the edit, q2 not sent
        assert views(app)[0].branch == (2, 2)
        views(app)[0].focus()
        await pilot.press("left")  # on a selected message, ←/→ flip its branches
        await pilot.pause()
        assert [v.text for v in views(app)] == ["q1", "a1", "q2", "a2"]
        assert app.focused is views(app)[0] and views(app)[0].branch == (1, 2)


async def test_switch_conversations_from_the_sidebar(make_app, fake: FakeEngine, store: Store) -> None:
    a = store.create_conversation("About cats")
    store.add_message(a.id, "user", "cats?")
    store.add_message(a.id, "assistant", "Cats purr.")
    b = store.create_conversation("About dogs")
    store.add_message(b.id, "user", "dogs?")
    store.add_message(b.id, "assistant", "Dogs bark.")
    fake.enqueue("Indeed they do.")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        sidebar = app.chat_screen.query_one("#sidebar")
        assert [str(sidebar.get_option_at_index(i).prompt) for i in range(sidebar.option_count)] == [
            "About dogs",
            "About cats",
        ]
        sidebar.focus()
        await pilot.press("down", "down")  # dogs (most recent), then cats
        assert sidebar.highlighted == 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat_screen.conversation_id == a.id
        assert [v.text for v in views(app)] == ["cats?", "Cats purr."]
        await send_and_wait(pilot, app, "and kittens?")
        assert [m.text for m in sent(fake)] == ["cats?", "Cats purr.", "and kittens?"]
        assert [m.text for m in store.messages(a.id)][-1] == "Indeed they do."
        assert len(store.messages(b.id)) == 2


async def test_search_jumps_to_a_hit_on_another_branch(make_app, store: Store) -> None:
    c = store.create_conversation("Zoo trip")
    q = store.add_message(c.id, "user", "which animal has stripes?")
    hit = store.add_message(c.id, "assistant", "The zebra has stripes.")
    store.add_message(c.id, "assistant", "Tigers too.", parent_id=q.id)  # the current branch
    other = store.create_conversation("Unrelated")
    store.add_message(other.id, "user", "hello")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await pilot.press("ctrl+f")
        await pilot.press(*"zebr")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat_screen.conversation_id == c.id)
        await pilot.pause()
        assert isinstance(app.focused, MessageView) and app.focused.message_id == hit.id
        assert app.focused.has_class("-hit")
        assert [m.id for m in store.messages(c.id)][-1] == hit.id  # that branch is now the shown one


async def test_rename_and_delete_with_confirmation(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "first chat")
        conversation_id = app.chat_screen.conversation_id
        await pilot.press("f2")
        await pilot.pause()
        rename = app.screen.query_one("Input")
        rename.value = "My  renamed chat"
        await pilot.press("enter")
        await pilot.pause()
        assert store.get_conversation(conversation_id).title == "My renamed chat"
        sidebar = app.chat_screen.query_one("#sidebar")
        assert str(sidebar.get_option_at_index(0).prompt) == "My renamed chat"
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")  # changed my mind
        await pilot.pause()
        assert store.get_conversation(conversation_id).title == "My renamed chat"
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: not store.list_conversations())
        await pilot.pause()
        assert app.chat_screen.conversation_id is None and views(app) == []
        assert sidebar.option_count == 0


async def test_switching_chats_while_answering(make_app, store: Store) -> None:
    words = " ".join(f"w{i}" for i in range(250))  # ~5 s: still streaming while the test switches (busy CI)
    slow = FakeEngine(delay=0.02).enqueue(words, "second chat answer")
    other = store.create_conversation("Other chat")
    store.add_message(other.id, "user", "old question")
    app = make_app(slow)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await send(pilot, app, "long one")
        first = store.latest_conversation().id
        await wait_until(pilot, lambda: app.job is not None and len(app.job.ui.text) > 10)
        await app.chat_screen.open_conversation(other.id)  # away while it streams
        await send(pilot, app, "meanwhile")  # queued behind the running answer
        await pilot.pause()
        assert app.queue == [other.id]
        await app.chat_screen.open_conversation(first)  # and back: the answer so far, still streaming
        await wait_until(pilot, lambda: idle(app))
        await pilot.pause()
        assert [m.text for m in store.messages(first)] == ["long one", words]
        await app.chat_screen.open_conversation(first)
        assert views(app)[-1].text == words
        assert [m.text for m in store.messages(other.id)][-2:] == ["meanwhile", "second chat answer"]


async def test_quitting_mid_answer_saves_it_as_partial(make_app, store: Store) -> None:
    slow = FakeEngine(delay=0.05).enqueue(" ".join(f"w{i}" for i in range(500)))
    app = make_app(slow)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await send(pilot, app, "go on forever")
        await wait_until(pilot, lambda: app.job is not None and len(app.job.ui.text) > 5)
        await pilot.press("ctrl+q")
    app.shutdown(timeout=10)  # what the CLI does after the app returns
    answer = store.messages(store.latest_conversation().id)[-1]
    assert answer.role == "assistant" and answer.status == "partial" and answer.text.startswith("w0 w1")
