"""Tool calls in the chat UI, with the scripted FakeEngine writing the calls: read-only calls run at once,
calls that change things wait for the approval dialog (once, always for this chat, deny, Esc), and every
call shows as a collapsible block, live and when the conversation is opened again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Static
from textual.widgets._collapsible import CollapsibleTitle

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.prompt import normalize
from g3chat.core.store import Store
from g3chat.core.tools.setup import load_tools
from g3chat.core.types import ToolCallPart, ToolResultPart
from g3chat.runtime import Runtime
from g3chat.tui.screens.approval_screen import ApprovalScreen
from g3chat.tui.screens.chat_screen import ChatScreen
from g3chat.tui.screens.chat_settings_screen import ChatSettingsScreen
from g3chat.tui.screens.edit_message_screen import EditMessageScreen
from g3chat.tui.widgets.tool_call_block import ToolCallBlock
from tests.tui.conftest import SIZE, TOOLS_SECTION, sent, wait_until
from tests.tui.test_flows import GatedEngine, idle, send, views

pytestmark = pytest.mark.asyncio

NOTES = "alpha\nTODO: beta\n"


def call(name: str, **arguments: Any) -> str:
    return "```tool_code\n" + json.dumps({"name": name, "parameters": arguments}) + "\n```"


def prompt_text(engine: FakeEngine, index: int = -1) -> str:
    return "\n".join(text for _, text in normalize(engine.calls[index]))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text(NOTES)
    return folder


@pytest.fixture
def tool_app(make_app, work: Path):
    """An app whose file tools are confined to ``work`` (no user tools, entry points or MCP servers)."""

    def make(**kwargs: Any):
        factory = lambda: load_tools(tools_dir=None, mcp_file=None, roots=[work], entry_points=False)  # noqa: E731
        return make_app(tools_factory=factory, **kwargs)

    return make


def blocks(app) -> list[ToolCallBlock]:
    return list(app.chat_screen.chat.query(ToolCallBlock))


def title(block: ToolCallBlock) -> str:
    return str(block.title)


async def ask(pilot, app, text: str) -> None:
    await wait_until(pilot, lambda: app.model_state == "ready")
    await send(pilot, app, text)


async def dialog(pilot, app) -> ApprovalScreen:
    """The approval dialog, once it is on screen and composed."""
    await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen) and bool(app.screen.query(Button)))
    return app.screen


async def answer_approval(pilot, app, key: str) -> ApprovalScreen:
    screen = await dialog(pilot, app)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
    return screen


async def test_read_only_call_runs_at_once_and_shows_a_collapsed_block(
    tool_app, fake: FakeEngine, store: Store
) -> None:
    fake.enqueue(["Let me look. ", call("read_file", path="notes.txt")], "It says beta.")
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "what is in notes.txt?")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)  # no dialog in between
        await pilot.pause()
        path = store.messages(1)
        assert [m.role for m in path] == ["user", "assistant", "user", "assistant"]
        (stored_call,) = [p for p in path[1].parts if isinstance(p, ToolCallPart)]
        assert stored_call.name == "read_file" and stored_call.arguments == {"path": "notes.txt"}
        assert path[2].parts == (ToolResultPart(stored_call.id, "read_file", NOTES, "ok"),)
        assert "```tool_outputs\nalpha\nTODO: beta\n```" in prompt_text(fake)  # the model got the result
        # On screen: the question, the answer with its call, the final answer; the results turn is hidden.
        shown = views(app)
        assert [(v.role, v.text) for v in shown] == [
            ("user", "what is in notes.txt?"),
            ("assistant", "Let me look."),
            ("assistant", "It says beta."),
        ]
        (block,) = shown[1].query(ToolCallBlock)
        assert block.collapsed and block.status == "ok" and block.call_id == stored_call.id
        assert title(block) == '⚙ read_file · ok · path="notes.txt"'
        contents = block.query_one(ToolCallBlock.Contents)
        assert contents.display is False or not contents.region.height  # collapsed: contents hidden
        block.collapsed = False
        await pilot.pause()
        assert block.query_one(ToolCallBlock.Contents).region.height > 0
        arguments, result = (
            str(block.query_one(f".{name}", Static).render()) for name in ("arguments", "result")
        )
        assert json.loads(arguments) == {"path": "notes.txt"} and result == NOTES


async def test_write_needs_approval_and_approving_once_writes(
    tool_app, fake: FakeEngine, store: Store, work: Path
) -> None:
    fake.enqueue(call("write_file", path="new.txt", content="hello\n"), "Written.")
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "write hello to new.txt")
        screen = await dialog(pilot, app)
        assert screen.request.tool == "write_file"
        preview = str(screen.query_one(".preview", Static).render())
        assert "+++ b/new.txt" in preview and "+hello" in preview
        assert not (work / "new.txt").exists()  # nothing happens before the answer
        (live,) = blocks(app)
        assert live.status == "waiting" and "waits for your approval" in str(
            app.chat_screen.header.query_one("#status").render()
        )
        await answer_approval(pilot, app, "y")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)
        await pilot.pause()
        assert (work / "new.txt").read_text() == "hello\n"
        result = store.messages(1)[2].parts[0]
        assert isinstance(result, ToolResultPart) and result.status == "ok"
        (block,) = blocks(app)
        assert block.status == "ok" and title(block).startswith("⚙ write_file · ok ·")


async def test_deny_leaves_the_file_and_tells_the_model(
    tool_app, fake: FakeEngine, store: Store, work: Path
) -> None:
    fake.enqueue(call("write_file", path="notes.txt", content="gone"), "Understood, I left it.")
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "wipe notes.txt")
        await answer_approval(pilot, app, "n")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)
        await pilot.pause()
        assert (work / "notes.txt").read_text() == NOTES
        assert "Denied: the user did not allow this call" in prompt_text(fake)  # and the model goes on
        assert store.messages(1)[-1].text == "Understood, I left it."
        (block,) = blocks(app)
        assert block.status == "denied" and title(block).startswith("⚙ write_file · denied ·")


async def test_always_skips_the_second_question_in_this_chat_only(
    tool_app, fake: FakeEngine, store: Store, work: Path
) -> None:
    fake.enqueue(call("write_file", path="a.txt", content="A"), "one")
    fake.enqueue(call("write_file", path="b.txt", content="B"), "two")
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "write a")
        await answer_approval(pilot, app, "a")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)
        await send(pilot, app, "now write b")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 8)  # no dialog this time
        assert (work / "a.txt").read_text() == "A" and (work / "b.txt").read_text() == "B"
        assert app.tools.policy(1).always == {"write_file"}
        # Another chat asks again.
        await pilot.press("ctrl+n")
        fake.enqueue(call("write_file", path="c.txt", content="C"), "three")
        await send(pilot, app, "write c")
        await answer_approval(pilot, app, "n")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(2)) == 4)
        assert not (work / "c.txt").exists()


async def test_esc_in_the_dialog_denies_and_stops_the_answer(
    tool_app, fake: FakeEngine, store: Store, work: Path
) -> None:
    fake.enqueue([call("run_shell", command="touch made.txt"), call("read_file", path="notes.txt")])
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "make a file")
        await answer_approval(pilot, app, "escape")
        await wait_until(pilot, lambda: idle(app))
        await pilot.pause()
        assert not (work / "made.txt").exists()
        assert len(fake.calls) == 1  # stopped: the model was not asked again
        path = store.messages(1)
        assert [m.role for m in path] == ["user", "assistant", "user"]
        results = [(p.name, p.status) for p in path[2].parts]
        assert results == [("run_shell", "denied"), ("read_file", "error")]
        assert path[2].parts[1].content == "cancelled before it ran"
        assert [b.status for b in blocks(app)] == ["denied", "error"]
        assert isinstance(app.screen, ChatScreen) and app.chat_screen.prompt.has_focus
        # The answer can go on later: regenerate continues from the results.
        fake.enqueue("Done, without the file.")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)
        assert store.messages(1)[-1].text == "Done, without the file."


async def test_reopening_the_chat_shows_the_blocks(
    tool_app, fake: FakeEngine, store: Store, runtime: Runtime
) -> None:
    fake.enqueue(
        [call("list_dir"), call("read_file", path="missing.txt")],
        ["Something ```tool_code\n{not json}\n```"],
        "Here is what I found.",
    )
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "look around")
        await wait_until(pilot, lambda: idle(app) and store.messages(1)[-1].text == "Here is what I found.")
    again = tool_app(conversation_id=1)
    async with again.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(blocks(again)) == 3)
        shown = blocks(again)
        assert [(b.tool, b.status) for b in shown] == [
            ("list_dir", "ok"),
            ("read_file", "error"),
            ("(unreadable call)", "error"),
        ]
        assert all(b.collapsed for b in shown)
        assert "notes.txt" in shown[0].result and "missing.txt" in shown[1].result
        assert "could not be read" in shown[2].result
        assert [v.role for v in views(again)] == ["user", "assistant", "assistant", "assistant"]
        shown[1].query_one(CollapsibleTitle).focus()  # the keyboard opens a block too
        await pilot.press("enter")
        assert not shown[1].collapsed and shown[0].collapsed
        assert not isinstance(again.screen, EditMessageScreen)  # Enter on a block is not "edit the message"


async def test_f9_turns_tools_off_for_one_chat_and_it_sticks(
    tool_app, fake: FakeEngine, store: Store, work: Path
) -> None:
    app = tool_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        titles = [c.title for c in app.get_system_commands(app.chat_screen)]
        assert any(t.startswith("Tools on/off (") for t in titles)  # in the command palette too
        await pilot.press("f9")  # on a new chat: the chat is made, tools off
        assert store.get_conversation(1).params == {"tools": False}
        fake.enqueue(call("run_shell", command="touch made.txt"))
        await send(pilot, app, "make a file")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 2)
        assert not any(TOOLS_SECTION in m.text for m in fake.calls[-1])  # no tools described
        assert not (work / "made.txt").exists() and not blocks(app)
        assert store.get_conversation(1).title == "make a file"
        # Saving the chat settings keeps the toggle.
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatSettingsScreen))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert store.get_conversation(1).params == {"tools": False}
        await pilot.press("f9")
        assert store.get_conversation(1).params == {"tools": True}
        await send(pilot, app, "hello")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)
        assert any(TOOLS_SECTION in m.text for m in fake.calls[-1])
        assert [m.text for m in sent(fake)][-1] == "hello"


async def test_ui_tools_false_and_a_small_window_leave_tools_out(
    make_app, tool_app, runtime: Runtime, store: Store
) -> None:
    small = FakeEngine(n_ctx=256)  # the fake counts words: the tools' description takes far more than 1/4
    app = tool_app(engine=small)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "hi")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 2)
        assert not any(TOOLS_SECTION in m.text for m in small.calls[-1])
        assert any("Tools left out" in str(n.message) for n in app._notifications)
    runtime.settings.ui.tools = False
    off = FakeEngine()
    app = tool_app(engine=off)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, app, "hi again")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(2)) == 2)
        assert not any(TOOLS_SECTION in m.text for m in off.calls[-1])


async def test_a_chat_in_the_background_asks_by_name(tool_app, store: Store, work: Path) -> None:
    gated = GatedEngine()  # loads when the test says so: the message waits, queued
    gated.enqueue(["Writing", " it", " now.", call("write_file", path="bg.txt", content="B")], "Written.")
    app = tool_app(engine=gated)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "write bg.txt")
        await pilot.press("ctrl+n")  # on to a new chat before the first one is answered
        gated.gate.set()
        screen = await dialog(pilot, app)
        assert "“write bg.txt”" in str(screen.query_one(".title", Static).render())
        assert app.chat_screen.conversation_id is None and not blocks(app)
        # The first chat, opened now, shows the call as still running (its result is not saved yet).
        await app.chat_screen.open_conversation(1)
        assert [v.text for v in views(app)] == ["write bg.txt", "Writing it now.", ""]  # "" is the next step
        (waiting,) = blocks(app)
        assert waiting.status == "running" and waiting.result is None
        await pilot.press("y")
        await wait_until(pilot, lambda: idle(app) and len(store.messages(1)) == 4)
        await pilot.pause()
        assert (work / "bg.txt").read_text() == "B"
        assert [b.status for b in blocks(app)] == ["ok"]
