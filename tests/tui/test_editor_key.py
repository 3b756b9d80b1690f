"""Ctrl+E in the chat UI: the message goes to a real editor program ($VISUAL) and comes back.

Under Pilot there is no terminal to hand over (Textual's headless driver cannot suspend), so the editor
runs in a thread there; on a terminal the UI suspends while it runs (tests/tui/test_tmux.py drives that).
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from g3chat.tui.keys import INPUT_ACTIONS
from tests.tui.conftest import SIZE, wait_until


def fake_editor(folder: Path, body: str) -> str:
    path = folder / "editor.py"
    path.write_text(f"#!{sys.executable}\nimport sys\npath = sys.argv[-1]\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return f"{path} --wait"


@pytest.mark.asyncio
async def test_ctrl_e_edits_the_message_in_the_editor(make_app, tmp_path: Path, monkeypatch) -> None:
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv(
        "VISUAL",
        fake_editor(
            tmp_path,
            f"open({str(seen)!r}, 'w').write(open(path).read())\n"
            "open(path, 'a').write('\\nsecond line from the editor\\n')",
        ),
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.chat_screen.prompt
        prompt.text = "first line"
        prompt.focus()
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: "editor" in prompt.text)
        assert seen.read_text() == "first line"
        assert prompt.text == "first line\nsecond line from the editor"  # the editor's final newline dropped
        assert prompt.cursor_location == (1, len("second line from the editor"))
        assert app.store.list_conversations() == []  # put back, not sent


@pytest.mark.asyncio
async def test_emptied_or_failing_editor_leaves_the_message_alone(
    make_app, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("VISUAL", fake_editor(tmp_path, "open(path, 'w').write('   ')"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.chat_screen.prompt
        prompt.text = "keep me"
        prompt.focus()
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: any("empty" in n.message for n in app._notifications))
        assert prompt.text == "keep me"
        monkeypatch.setenv("VISUAL", "false")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: any("exited with status 1" in n.message for n in app._notifications))
        assert prompt.text == "keep me"


def test_the_key_is_an_input_action_so_it_can_be_rebound() -> None:
    action = next(a for a in INPUT_ACTIONS if a.name == "edit_in_editor")
    assert action.key == "ctrl+e"
