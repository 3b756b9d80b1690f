"""A new chat with a role in the chat UI: the picker, what the conversation stores, what the model gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.store import Store
from g3chat.tui.screens.chat_settings_screen import ChatSettingsScreen
from g3chat.tui.screens.role_picker_screen import RolePickerScreen
from tests.tui.conftest import SIZE, wait_until

pytestmark = pytest.mark.asyncio


def header_role(app) -> str:
    part = app.chat_screen.header.query_one("#role")
    return str(part.render()) if part.display else ""


async def test_new_chat_with_a_role(make_app, fake: FakeEngine, store: Store, g3chat_home: Path) -> None:
    roles = g3chat_home / "config" / "roles"
    roles.mkdir(parents=True)
    (roles / "terse.toml").write_text(
        'description = "Two words"\nsystem_prompt = "Be terse."\nmax_tokens = 2\ntools = false\n'
    )
    (roles / "broken.toml").write_text('system_prompt = "x"\ntemperature = "hot"\n')
    fake.enqueue("one two three four")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        titles = [c.title for c in app.get_system_commands(app.chat_screen)]
        assert "New chat with role… (alt+n)" in titles and "Edit in $EDITOR (^e)" in titles
        await pilot.press("alt+n")
        await wait_until(pilot, lambda: isinstance(app.screen, RolePickerScreen))
        assert any(
            "broken.toml:2: temperature must be a number" in n.message for n in app._notifications
        )  # skipped, with file:line
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == ["review", "shell", "summarise", "terse", "translate"]
        options.highlighted = ids.index("terse")
        await pilot.press("enter")
        await wait_until(pilot, lambda: store.latest_conversation() is not None)
        conversation = store.latest_conversation()
        assert conversation.system_prompt == "Be terse."
        assert conversation.params == {"role": "terse", "max_tokens": 2, "tools": False}
        await wait_until(pilot, lambda: header_role(app) == "role: terse")
        assert app.chat_screen.conversation_id == conversation.id
        app.chat_screen.prompt.text = "hello"
        app.chat_screen.prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.job is None and len(store.messages(conversation.id)) == 2)
        assert [(m.role, m.text) for m in fake.calls[-1]] == [("system", "Be terse."), ("user", "hello")]
        answer = store.messages(conversation.id)[-1]
        assert answer.text == "one two" and answer.meta["finish_reason"] == "length"  # the role's max_tokens
        assert store.get_conversation(conversation.id).title == "hello"
        # Saving the chat settings keeps the role's name (and the tools switch) with the conversation.
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatSettingsScreen))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, ChatSettingsScreen))
        assert store.get_conversation(conversation.id).params["role"] == "terse"
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: header_role(app) == "")


async def test_escape_leaves_the_chat_as_it_was(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+n")
        await wait_until(pilot, lambda: isinstance(app.screen, RolePickerScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, RolePickerScreen))
        assert store.list_conversations() == [] and app.chat_screen.conversation_id is None
