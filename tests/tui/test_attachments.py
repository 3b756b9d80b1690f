"""Attachments in the chat UI, with the scripted FakeEngine: by command, by pasted or typed path, by the
file picker and the microphone; chips removed before sending; what the history holds afterwards, and what a
reloaded conversation shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.errors import MicrophoneError
from g3chat.core.media.mic import NO_DEVICE
from g3chat.core.store import Store
from g3chat.core.types import AttachmentPart, TextPart
from g3chat.tui.screens.attach_screen import AttachScreen
from g3chat.tui.widgets.attachment_chips import AttachmentChip
from g3chat.tui.widgets.attachment_tray import AttachmentTray
from g3chat.tui.widgets.image_preview import ImagePreview
from g3chat.tui.widgets.media_file_tree import MediaFileTree
from g3chat.tui.widgets.record_toggle import RecordToggle
from g3chat.tui.widgets.sent_attachments import SentAttachments
from tests.fixtures import media_files as mf
from tests.fixtures.scripted_recorder import ScriptedRecorder
from tests.tui.conftest import SIZE, wait_until

pytestmark = pytest.mark.asyncio


def idle(app) -> bool:
    return app.model_state == "ready" and app.job is None and not app.queue


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


def chips(app) -> list[str]:
    return [chip.text for chip in app.chat_screen.tray.query(AttachmentChip)]


def media_files(app) -> list[Path]:
    root = app.paths.media_dir()
    return sorted(p for p in root.rglob("*") if p.is_file())


async def enter(pilot, app, text: str) -> None:
    app.chat_screen.prompt.text = text
    app.chat_screen.prompt.focus()
    await pilot.press("enter")


async def send_and_wait(pilot, app, store: Store, text: str) -> None:
    count = sum(c.message_count for c in store.list_conversations())
    await enter(pilot, app, text)
    await wait_until(
        pilot, lambda: idle(app) and sum(c.message_count for c in store.list_conversations()) >= count + 2
    )
    await pilot.pause()


async def test_attach_by_command_send_store_and_reload(make_app, store: Store, tmp_path: Path) -> None:
    cat = mf.image(tmp_path / "cat.png", "PNG", size=(64, 48))
    fake = FakeEngine()  # no vision projector: the image is kept but the model gets a note
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        tray = app.chat_screen.query_one(AttachmentTray)
        assert not tray.display or tray.has_class("-empty")
        await enter(pilot, app, f"/image {cat}")
        await wait_until(pilot, lambda: chips(app) == ["▣ cat.png 64×48"])
        assert store.list_conversations() == [] and app.chat_screen.prompt.text == ""
        assert not tray.has_class("-empty") and len(tray.query(ImagePreview)) == 1
        assert any("this model has no vision projector: cat.png" in n for n in notes(app))  # said at once
        await send_and_wait(pilot, app, store, "what is this?")
        conversation = store.latest_conversation()
        assert conversation is not None and conversation.title == "what is this?"
        question = store.messages(conversation.id)[0]
        image, text = question.parts
        assert isinstance(image, AttachmentPart) and image.kind == "image" and image.name == "cat.png"
        assert (image.width, image.height) == (64, 48) and Path(image.path).is_file()
        assert text == TextPart("what is this?")
        assert fake.calls[-1][-1].attachments == (image,)  # the engine got the part (and, here, notes it)
        assert chips(app) == [] and tray.has_class("-empty")
        chat = app.chat_screen.chat
        notice = [str(w.render()) for w in chat.query(".notice")]
        assert notice == [
            "⚠ this model has no vision projector: cat.png is kept in the conversation but not sent "
            "(pass --mmproj PATH, the model's mmproj GGUF, to use images)"
        ]
        [sent] = app.chat_screen.chat.query(SentAttachments)
        assert sent.labels == ["▣ cat.png 64×48"] and len(sent.query(ImagePreview)) == 1
    reopened = make_app(FakeEngine(), conversation_id=conversation.id)
    async with reopened.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(reopened.chat_screen.chat.query(SentAttachments)))
        [sent] = reopened.chat_screen.chat.query(SentAttachments)
        assert sent.labels == ["▣ cat.png 64×48"]
        preview = sent.query_one(ImagePreview)
        await pilot.pause()
        assert next(iter(preview.render_line(0))).style.color.triplet == mf.RED


async def test_pasted_and_typed_paths_remove_a_chip_and_send_without_text(
    make_app, store: Store, tmp_path: Path
) -> None:
    memo = mf.wav(tmp_path / "memo.wav", mf.tone(1.0, 16000), 16000)
    photo = mf.image(tmp_path / "My Photo.jpg", "JPEG", size=(30, 20))
    fake = FakeEngine(vision=True, audio=True)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        prompt = app.chat_screen.prompt
        prompt.focus()
        app.post_message(events.Paste(f"'{photo}'"))  # as a terminal pastes a dropped file
        await wait_until(pilot, lambda: len(chips(app)) == 1)
        assert chips(app) == ["▣ My Photo.jpg 30×20"] and prompt.text == ""
        words = "not a path, just words " * 20  # one long line: longer than a file name may be
        app.post_message(events.Paste(words))
        await wait_until(pilot, lambda: prompt.text == words)
        prompt.text = ""
        await enter(pilot, app, str(memo))  # a typed path, Enter
        await wait_until(pilot, lambda: len(chips(app)) == 2)
        assert chips(app)[1].startswith("♪ memo.wav 0:01 ") and store.list_conversations() == []
        first = app.chat_screen.tray.query(AttachmentChip).first()
        await pilot.click(first.query_one(".chip-remove"))
        await wait_until(pilot, lambda: len(chips(app)) == 1)
        prompt.focus()
        await pilot.press("enter")  # nothing typed: the attachment alone is sent
        await wait_until(pilot, lambda: idle(app) and len(store.list_conversations()) == 1)
        conversation = store.latest_conversation()
        assert conversation.title == "memo.wav"
        [question, _answer] = store.messages(conversation.id)
        [audio] = question.parts
        assert isinstance(audio, AttachmentPart) and audio.kind == "audio" and audio.duration_s == 1.0
        assert fake.calls[-1][-1].attachments == (audio,)
        assert not app.chat_screen.chat.query(".notice")  # the model takes audio: nothing to say


async def test_bad_files_are_one_notification_and_nothing_is_stored(
    make_app, store: Store, tmp_path: Path
) -> None:
    fake_png = tmp_path / "notes.png"
    fake_png.write_text("this is text, not an image")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await enter(pilot, app, f"/image {fake_png}")
        await wait_until(pilot, lambda: bool(notes(app)))
        assert notes(app)[-1] == f"{fake_png}: not an image g3chat can read (PNG, JPEG, WebP, GIF, BMP, TIFF)"
        assert app.chat_screen.prompt.text == f"/image {fake_png}"  # kept, to fix the path
        await enter(pilot, app, f"/video {tmp_path / 'missing.mp4'}")
        await wait_until(pilot, lambda: len(notes(app)) == 2)
        assert notes(app)[-1] == f"{tmp_path / 'missing.mp4'}: no such file"
        await enter(pilot, app, "/audio")
        await wait_until(pilot, lambda: len(notes(app)) == 3)
        assert notes(app)[-1] == "/audio needs a file: /audio PATH"
        assert chips(app) == [] and media_files(app) == [] and store.list_conversations() == []


async def test_video_says_what_its_frames_cost(make_app, store: Store, tmp_path: Path) -> None:
    clip = mf.color_video(tmp_path / "clip.mp4", 3)
    fake = FakeEngine(vision=True, tokens_per_media=256)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await enter(pilot, app, f"/video {clip}\nwhat happens?")  # the line after the command is sent
        await wait_until(pilot, lambda: idle(app) and len(store.list_conversations()) == 1)
        await pilot.pause()
        assert "clip.mp4: 3 frames, 768 prompt tokens (sent with your next message)" in notes(app)
        [question, _answer] = store.messages(store.latest_conversation().id)
        frames = [p for p in question.parts if isinstance(p, AttachmentPart)]
        assert [p.timestamp for p in frames] == [0.0, 1.0, 2.0] and question.text == "what happens?"
        notice = [str(w.render()) for w in app.chat_screen.chat.query(".notice")]
        assert notice == ["ⓘ clip.mp4: 3 frames, 768 prompt tokens"]
        [sent] = app.chat_screen.chat.query(SentAttachments)
        assert sent.labels == ["▶ clip.mp4 · 3 frames"]


async def test_file_picker_attaches_the_chosen_file(make_app, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    mf.image(folder / "dog.png", "PNG", size=(20, 20))
    (folder / "readme.txt").write_text("x")
    monkeypatch.chdir(folder)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachScreen))
        await pilot.press("backspace")  # up a folder, then cancel: nothing attached
        await wait_until(pilot, lambda: Path(app.screen.query_one(MediaFileTree).path) == tmp_path)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, AttachScreen))
        assert chips(app) == []
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachScreen))
        tree = app.screen.query_one(MediaFileTree)
        await wait_until(pilot, lambda: len(tree.root.children) > 0)
        assert [str(n.label) for n in tree.root.children] == ["dog.png"]
        tree.select_node(tree.root.children[0])
        await wait_until(pilot, lambda: chips(app) == ["▣ dog.png 20×20"])
        assert not isinstance(app.screen, AttachScreen)


async def test_record_toggle_attaches_the_clip(make_app, store: Store) -> None:
    app = make_app(FakeEngine(audio=True))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        toggle = app.chat_screen.query_one(RecordToggle)
        toggle.recorder_factory = lambda on_level: ScriptedRecorder(on_level, sample=8000)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: toggle.elapsed >= 0.3)
        tray = app.chat_screen.tray
        assert toggle.display and not tray.has_class("-empty") and "▆" in str(toggle.render())
        assert "^s stops" in str(tray.query_one("#record-hint").render())
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(chips(app)) == 1)
        assert chips(app)[0].startswith("♪ recording-") and not toggle.recording
        [part] = app.chat_screen.tray.attachments
        assert part.kind == "audio" and part.duration_s >= 0.3 and Path(part.path).is_file()


async def test_microphone_failure_is_a_notification(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        toggle = app.chat_screen.query_one(RecordToggle)
        toggle.recorder_factory = lambda on_level: ScriptedRecorder(on_level, MicrophoneError(NO_DEVICE))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: NO_DEVICE in notes(app))
        await wait_until(pilot, lambda: app.chat_screen.tray.has_class("-empty"))
        assert chips(app) == [] and not toggle.recording


async def test_editing_a_message_keeps_its_attachments(make_app, store: Store, tmp_path: Path) -> None:
    from g3chat.tui.screens.edit_message_screen import EditMessageScreen

    cat = mf.image(tmp_path / "cat.png", "PNG")
    app = make_app(FakeEngine(vision=True))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready")
        await enter(pilot, app, f"/image {cat}\nwhat colour?")
        await wait_until(pilot, lambda: idle(app) and len(store.list_conversations()) == 1)
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, EditMessageScreen))
        app.screen.query_one("TextArea").text = "which colour?"
        await pilot.press("ctrl+s")
        cid = store.latest_conversation().id
        await wait_until(pilot, lambda: idle(app) and store.messages(cid)[0].text == "which colour?")
        [image, _text] = store.messages(cid)[0].parts
        assert isinstance(image, AttachmentPart) and image.name == "cat.png"
