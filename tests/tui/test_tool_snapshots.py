"""A snapshot of tool calls in the chat UI: earlier calls as blocks (from the history), and the approval
dialog with the diff of a file edit. Update with ``pytest --snapshot-update`` and look at the SVG first."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.store import Store
from g3chat.core.tools.setup import load_tools
from g3chat.core.types import TextPart, ToolCallPart, ToolResultPart
from g3chat.runtime import Runtime
from g3chat.tui.screens.approval_screen import ApprovalScreen
from g3chat.tui.widgets.tool_call_block import ToolCallBlock
from tests.tui.conftest import wait_until
from tests.tui.test_snapshots import SNAPSHOT_SIZE
from tests.tui.test_tool_flows import call


@pytest.fixture(autouse=True)
def colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)


def history(store: Store) -> int:
    c = store.create_conversation("Fix the notes")
    store.add_message(c.id, "user", "What does notes.txt say?")
    read = ToolCallPart("call_1", "read_file", {"path": "notes.txt"})
    store.add_message(c.id, "assistant", [TextPart("Let me read it."), read], model="fake")
    store.add_message(c.id, "user", [ToolResultPart("call_1", "read_file", "alpha\nTODO: beta\n")])
    shell = ToolCallPart("call_2", "run_shell", {"command": "rm -rf build"})
    store.add_message(c.id, "assistant", [shell], model="fake")
    denied = ToolResultPart("call_2", "run_shell", "Denied: the user did not allow this call", "denied")
    store.add_message(c.id, "user", [denied])
    store.add_message(c.id, "assistant", "It has one TODO: **beta**.", model="fake")
    return c.id


def test_approval_dialog_over_tool_blocks(
    snap_compare, runtime: Runtime, store: Store, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("alpha\nTODO: beta\ngamma\n")
    conversation_id = history(store)
    engine = FakeEngine().enqueue(
        call("edit_file", path="notes.txt", old_text="TODO: beta", new_text="DONE: beta")
    )
    app = runtime.chat_app(
        store,
        engine=engine,
        conversation_id=conversation_id,
        tools_factory=lambda: load_tools(tools_dir=None, mcp_file=None, roots=[tmp_path], entry_points=False),
    )

    async def run_before(pilot) -> None:
        await wait_until(pilot, lambda: app.model_state == "ready")
        app.chat_screen.prompt.cursor_blink = False
        app.chat_screen.prompt.text = "Mark it done."
        await pilot.press("enter")
        asking = lambda: isinstance(app.screen, ApprovalScreen) and bool(app.screen.query(Button))  # noqa: E731
        await wait_until(pilot, asking)
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=run_before)
    assert engine.calls[0][-1].text == "Mark it done."
    assert (tmp_path / "notes.txt").read_text() == "alpha\nTODO: beta\ngamma\n"  # quitting denied it


def test_tool_blocks_from_the_history(snap_compare, runtime: Runtime, store: Store) -> None:
    conversation_id = history(store)
    app = runtime.chat_app(store, engine=FakeEngine(), conversation_id=conversation_id)

    async def run_before(pilot) -> None:
        await wait_until(pilot, lambda: app.model_state == "ready" and len(app.query(ToolCallBlock)) == 2)
        app.chat_screen.prompt.cursor_blink = False
        app.query(ToolCallBlock).first().collapsed = False  # the first expanded, the denied one not
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=run_before)
