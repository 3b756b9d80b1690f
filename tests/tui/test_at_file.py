"""``@path`` in the chat UI, with the scripted FakeEngine: completion in the message box, the file attached on
send (a chip on the sent message, its text in what the engine counts), and a refusal outside the folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.media.textfile import block
from g3chat.core.store import Store
from g3chat.core.types import Message
from g3chat.tui.widgets.sent_attachments import SentAttachments
from tests.tui.conftest import SIZE, sent, wait_until

pytestmark = pytest.mark.asyncio

NOTES = "the otter sleeps at noon and wakes at dusk\n"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.md").write_text(NOTES)
    monkeypatch.chdir(folder)  # the working folder: where @path may read
    return folder


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_at_file_completes_and_is_attached_on_send(make_app, store: Store, work: Path) -> None:
    fake = FakeEngine()
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        prompt = app.chat_screen.prompt
        prompt.focus()
        await pilot.press(*"sum", "space", "@", "n", "o")
        assert prompt.suggestion == "tes.md"
        await pilot.press("tab")
        assert prompt.text == "sum @notes.md" and prompt.has_focus
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(fake.calls) and app.job is None)
        await pilot.pause()
        conversation = store.latest_conversation()
        assert conversation is not None
        question = store.messages(conversation.id)[0].to_message()
        (part,) = question.attachments
        assert part.kind == "text_file" and Path(part.path).read_text() == NOTES
        assert question.text == "sum @notes.md"
        assert sent(fake)[-1].attachments == (part,)
        chips = app.chat_screen.chat.query(SentAttachments).first().labels
        assert chips == [f"≡ notes.md {len(NOTES)} chars"]
        # the meter counts the file: the fake engine counts the words of its block as prompt tokens
        full = fake.calls[-1]
        bare = [Message(m.role, tuple(p for p in m.parts if p != part)) for m in full]
        assert fake.count_tokens(full) - fake.count_tokens(bare) == len(block(part).split()) > 8
        answer = store.messages(conversation.id)[1]
        assert answer.prompt_tokens == fake.count_tokens(full)
        used = app.chat_screen.used_tokens
        assert used is not None and used >= answer.prompt_tokens
        assert not app.chat_screen.tray.attachments  # sent with the message, not left waiting


async def test_at_file_outside_the_folders_is_refused(
    make_app, store: Store, work: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("keys\n")
    fake = FakeEngine()
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        prompt = app.chat_screen.prompt
        prompt.text = "read @../secret.txt"
        prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("outside the folders" in n for n in notes(app)))
        assert store.list_conversations() == [] and fake.calls == []  # nothing sent or saved
        assert prompt.text == "read @../secret.txt"  # kept, to fix
        assert not app.chat_screen.tray.attachments
        assert not any(app.paths.media_dir().rglob("*.txt"))
