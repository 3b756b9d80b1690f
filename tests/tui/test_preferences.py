"""Themes, key bindings, the command palette and per-conversation settings, through the running app."""

from __future__ import annotations

import sys

import pytest

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.store import Store
from g3chat.runtime import Runtime
from g3chat.tui import keys
from g3chat.tui.screens.chat_settings_screen import ChatSettingsScreen
from tests.tui.conftest import SIZE, sent, wait_until

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.asyncio


async def test_theme_switch_persists_into_the_config_file(runtime: Runtime, make_app) -> None:
    config = runtime.paths.config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("# my settings\n[generation]\ntemperature = 0.7  # warm\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "g3-dark"
        assert {"g3-dark", "g3-light", "g3-high-contrast", "amber-crt"} <= set(app.available_themes)
        await pilot.press("ctrl+t")  # the theme picker (a command palette of themes)
        await pilot.pause()
        await pilot.press(*"amber")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.theme == "amber-crt")
        await pilot.pause()
    text = config.read_text()
    assert "# my settings" in text and "# warm" in text  # comments survive
    assert tomllib.loads(text)["ui"]["theme"] == "amber-crt"
    again = Runtime.from_env()
    store = again.open_store()
    try:
        second = again.chat_app(store, engine=FakeEngine())
        async with second.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert second.theme == "amber-crt"
    finally:
        store.close()


async def test_broken_user_theme_is_reported_and_skipped(runtime: Runtime, make_app) -> None:
    themes = runtime.paths.themes_dir()
    (themes / "broken.toml").write_text('name = "broken"\n[colors]\nprimary = "not-a-colour"\n')
    (themes / "ocean.toml").write_text('name = "ocean"\ndark = true\n[colors]\nprimary = "#0077BE"\n')
    runtime.settings.ui.theme = "broken"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notes = " ".join(n.message for n in app._notifications)
        assert "broken.toml" in notes and "not a colour" in notes
        assert "Unknown theme 'broken'" in notes
        assert app.theme == "g3-dark"
        assert "ocean" in app.available_themes


async def test_keys_are_rebindable_from_the_config(runtime: Runtime, make_app, store: Store) -> None:
    runtime.settings.keys.update({"new_chat": "ctrl+g", "no_such_action": "f12"})
    c = store.create_conversation("old")
    store.add_message(c.id, "user", "hello")
    app = make_app(conversation_id=c.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.chat_screen.conversation_id == c.id
        assert any("no_such_action" in n.message for n in app._notifications)
        await pilot.press("ctrl+n")  # the old key no longer does it
        await pilot.pause()
        assert app.chat_screen.conversation_id == c.id
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.chat_screen.conversation_id is None


async def test_command_palette_lists_every_action(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.chat_screen)]
        for action in keys.ACTIONS:
            assert any(t.startswith(action.title) for t in titles), action.name
        assert "New chat (^n)" in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press(*"regenerate")
        await pilot.pause(0.3)
        await pilot.press("escape")


async def test_chat_settings_apply_to_the_next_answer(make_app, fake: FakeEngine, store: Store) -> None:
    fake.enqueue("one two three four five six")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatSettingsScreen))
        screen = app.screen
        screen.query_one("#system").text = "Answer like a pirate."
        screen.query_one("#param-max_tokens").value = "oops"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChatSettingsScreen)  # a bad value keeps the form open
        assert "max_tokens must be an integer" in str(screen.query_one(".problems").render())
        screen.query_one("#param-max_tokens").value = "3"
        screen.query_one("#param-temperature").value = "0.2"
        await pilot.press("ctrl+s")
        await pilot.pause()
        conversation = store.latest_conversation()
        assert conversation.system_prompt == "Answer like a pirate."
        assert conversation.params == {"max_tokens": 3, "temperature": 0.2}
        app.chat_screen.prompt.text = "ahoy"
        app.chat_screen.prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.job is None and len(store.messages(conversation.id)) == 2)
        assert [(m.role, m.text) for m in sent(fake)] == [
            ("system", "Answer like a pirate."),
            ("user", "ahoy"),
        ]
        answer = store.messages(conversation.id)[-1]
        assert answer.text == "one two three" and answer.meta["finish_reason"] == "length"
