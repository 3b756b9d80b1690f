"""Copying, the message box's keys, moving between messages, failures and the context window."""

from __future__ import annotations

import pytest

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.errors import EngineError
from g3chat.core.store import Store
from g3chat.tui.screens.code_picker_screen import CodePickerScreen
from g3chat.tui.widgets.message_view import MessageView
from tests.tui.conftest import SIZE, wait_until
from tests.tui.test_flows import idle, send_and_wait, views

pytestmark = pytest.mark.asyncio

TWO_BLOCKS = "First:\n\n```sh\nls -l\n```\n\nSecond:\n\n```python\nx = 1\n```\n"


async def test_copy_message_and_code_blocks(make_app, fake: FakeEngine) -> None:
    fake.enqueue([TWO_BLOCKS])
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "two blocks please")
        await pilot.press("f5")
        assert app.clipboard == TWO_BLOCKS
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, CodePickerScreen))
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.clipboard == "x = 1\n"
        views(app)[0].focus()  # a selected message of mine is what gets copied
        await pilot.press("c")
        assert app.clipboard == "two blocks please"


async def test_newline_key_and_multiline_send(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await pilot.press("a", "ctrl+j", "b")
        assert app.chat_screen.prompt.text == "a\nb"
        await pilot.press("enter")
        await wait_until(pilot, lambda: idle(app) and store.latest_conversation() is not None)
        conversation = store.latest_conversation()
        assert store.messages(conversation.id)[0].text == "a\nb"
        assert app.chat_screen.prompt.text == ""


async def test_moving_between_messages_with_the_keyboard(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "one")
        await send_and_wait(pilot, app, "two")
        await pilot.press("ctrl+up")
        assert app.focused is views(app)[-1]
        await pilot.press("up", "up")
        assert app.focused is views(app)[1]
        await pilot.press("down", "down", "down")
        assert app.focused is app.chat_screen.prompt  # past the last message: back to typing
        await pilot.press("ctrl+up", "escape")
        assert app.focused is app.chat_screen.prompt


async def test_engine_failure_is_shown_and_saved(make_app, fake: FakeEngine, store: Store) -> None:
    fake.enqueue(EngineError("llama.cpp failed while generating: out of memory"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "hello")
        answer = store.messages(store.latest_conversation().id)[-1]
        assert answer.role == "assistant" and answer.status == "error"
        shown = views(app)[-1]
        assert shown.has_class("-error") and "out of memory" in (shown.error or "")
        assert any("out of memory" in n.message for n in app._notifications)


async def test_long_conversation_drops_the_oldest_turns_with_a_notice(make_app, store: Store) -> None:
    small = FakeEngine(n_ctx=120)  # FakeEngine counts words + 4 per message
    c = store.create_conversation("long", system_prompt="Be brief.")
    for i in range(6):
        store.add_message(c.id, "user", f"question {i} " + "blah " * 8)
        store.add_message(c.id, "assistant", f"answer {i} " + "blah " * 8)
    app = make_app(small, conversation_id=c.id)
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "and now?")
        sent = small.calls[-1]
        assert sent[0].role == "system" and sent[-1].text == "and now?"
        assert "question 0" not in " ".join(m.text for m in sent)
        assert small.count_tokens(sent) <= 120 - 30  # n_ctx minus the answer reserve (a quarter)
        notices = [str(n.render()) for n in app.chat_screen.chat.query(".notice")]
        assert any("oldest" in n and "left out" in n for n in notices)
        assert len(store.messages(c.id)) == 14  # nothing was deleted


async def test_context_meter_fills_up(make_app, store: Store) -> None:
    engine = FakeEngine(n_ctx=100).enqueue("a b c d e f g h")
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "x " * 70)
        meter = app.chat_screen.header.query_one("#meter")
        assert "/100" in str(meter.render())
        assert meter.has_class("-full") or meter.has_class("-warn")
        assert isinstance(views(app)[-1], MessageView)


async def test_long_conversations_mount_the_latest_messages_first(make_app, store: Store) -> None:
    from g3chat.tui.widgets.chat_view import WINDOW

    c = store.create_conversation("long")
    ids = []
    for i in range(WINDOW * 2):
        ids.append(store.add_message(c.id, "user" if i % 2 == 0 else "assistant", f"message number {i}").id)
    app = make_app(conversation_id=c.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        chat = app.chat_screen.chat
        assert [v.message_id for v in chat.messages()] == ids[-WINDOW:]
        marker = chat.query_one(".earlier")
        assert f"{WINDOW} earlier messages" in str(marker.render())
        chat.scroll_home(animate=False)
        await wait_until(pilot, lambda: len(chat.messages()) == 2 * WINDOW and not chat.query(".earlier"))
        assert [v.message_id for v in chat.messages()] == ids
        # A search hit in the part not shown yet is mounted on the way.
        await app.chat_screen.open_conversation(c.id, focus=ids[1])
        await pilot.pause()
        assert isinstance(app.focused, MessageView) and app.focused.message_id == ids[1]
