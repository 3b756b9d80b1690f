"""The attachment widgets in isolation, each on a tiny test app (the chat app wires them in later)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from g3chat.core.errors import MicrophoneError
from g3chat.core.media.audio import attach_audio
from g3chat.core.media.images import attach_image
from g3chat.core.media.mic import NO_DEVICE, Recording
from g3chat.core.media.store import MediaStore
from g3chat.core.media.video import attach_video
from g3chat.tui.widgets.attachment_chips import AttachmentChip, AttachmentChips
from g3chat.tui.widgets.image_preview import ImagePreview
from g3chat.tui.widgets.record_toggle import RecordToggle
from tests.fixtures import media_files as mf
from tests.fixtures.scripted_recorder import ScriptedRecorder

pytestmark = pytest.mark.asyncio


async def wait_until(pilot, predicate, tries: int = 100) -> None:
    for _ in range(tries):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


class ChipsApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def compose(self) -> ComposeResult:
        yield AttachmentChips(id="chips")

    def on_attachment_chips_changed(self, event: AttachmentChips.Changed) -> None:
        self.changes += 1


async def test_chips_add_group_and_remove(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    image = attach_image(store, mf.image(tmp_path / "cat.png", "PNG", size=(64, 48)))
    audio = attach_audio(store, mf.wav(tmp_path / "note.wav", mf.tone(3.0, 16000), 16000))
    frames = attach_video(store, mf.color_video(tmp_path / "clip.mp4", 3))
    app = ChipsApp()
    async with app.run_test(size=(120, 10)) as pilot:
        chips = app.query_one(AttachmentChips)
        assert not chips.display or chips.has_class("-empty")
        chips.add([image, audio, *frames])
        chips.add([image])  # the same file again: still one chip
        await pilot.pause()
        labels = [chip.text for chip in app.query(AttachmentChip)]
        assert labels[0] == "▣ cat.png 64×48"
        assert labels[1].startswith("♪ note.wav 0:03 ") and "▄" in labels[1]  # a half-scale tone
        assert labels[2] == "▶ clip.mp4 · 3 frames"
        assert len(chips.attachments) == 5 and not chips.has_class("-empty")
        video_chip = list(app.query(AttachmentChip))[2]
        await pilot.click(video_chip.query_one(".chip-remove"))
        await wait_until(pilot, lambda: len(app.query(AttachmentChip)) == 2)
        assert [p.kind for p in chips.attachments] == ["image", "audio"]
        chips.clear()
        await pilot.pause()
        assert chips.attachments == [] and chips.has_class("-empty") and app.changes >= 4


class PreviewApp(App):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield ImagePreview(self.path)


async def test_image_preview_paints_half_block_pixels(tmp_path: Path) -> None:
    from PIL import Image

    img = Image.new("RGB", (32, 24), mf.RED)
    img.paste(mf.BLUE, (0, 12, 32, 24))
    img.save(tmp_path / "two.png")
    app = PreviewApp(tmp_path / "two.png")
    async with app.run_test(size=(40, 14)) as pilot:
        await pilot.pause()
        preview = app.query_one(ImagePreview)
        top, bottom = preview.render_line(0), preview.render_line(preview.size.height - 1)
        first = next(iter(top))
        assert first.text == "▀" and first.style.color.triplet == mf.RED
        last = next(iter(bottom))
        assert last.style.bgcolor.triplet == mf.BLUE


class RecordApp(App):
    def __init__(self, factory) -> None:
        super().__init__()
        self.factory = factory
        self.results: list[object] = []

    def compose(self) -> ComposeResult:
        yield RecordToggle(self.factory)

    def on_record_toggle_recorded(self, event: RecordToggle.Recorded) -> None:
        self.results.append(event.recording)

    def on_record_toggle_failed(self, event: RecordToggle.Failed) -> None:
        self.results.append(event.error)


async def test_record_toggle_meter_and_stop() -> None:
    app = RecordApp(lambda on_level: ScriptedRecorder(on_level))
    async with app.run_test() as pilot:
        toggle = app.query_one(RecordToggle)
        assert str(toggle.render()) == "● Rec"
        toggle.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: toggle.elapsed >= 0.2)
        assert toggle.has_class("-recording") and str(toggle.render()).startswith("■ 0:0")
        assert "▆" in str(toggle.render())  # level 0.8 on the meter
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.results))
        [recording] = app.results
        assert isinstance(recording, Recording) and recording.stopped_by == "key"
        assert not toggle.recording


@pytest.mark.parametrize("error", [MicrophoneError(NO_DEVICE)])
async def test_record_toggle_reports_microphone_errors(error: Exception) -> None:
    app = RecordApp(lambda on_level: ScriptedRecorder(on_level, fail=error))
    async with app.run_test() as pilot:
        await pilot.click(RecordToggle)
        await wait_until(pilot, lambda: bool(app.results))
        assert app.results == [NO_DEVICE] and not app.query_one(RecordToggle).recording


class PickerApp(App):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.picked: list[Path] = []

    def compose(self) -> ComposeResult:
        from g3chat.tui.widgets.media_file_tree import MediaFileTree

        yield MediaFileTree(self.root)

    def on_directory_tree_file_selected(self, event) -> None:
        self.picked.append(event.path)


async def test_file_picker_lists_only_folders_and_media(tmp_path: Path) -> None:
    from g3chat.tui.widgets.media_file_tree import MediaFileTree

    mf.image(tmp_path / "cat.png", "PNG")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    mf.wav(tmp_path / "memo.wav", mf.tone(0.1, 16000), 16000)
    app = PickerApp(tmp_path)
    async with app.run_test() as pilot:
        tree = app.query_one(MediaFileTree)
        await wait_until(pilot, lambda: len(tree.root.children) > 0)
        names = sorted(str(node.label) for node in tree.root.children)
        assert names == ["cat.png", "memo.wav", "sub"]
        cat = next(node for node in tree.root.children if str(node.label) == "cat.png")
        tree.select_node(cat)
        await wait_until(pilot, lambda: bool(app.picked))
        assert app.picked == [tmp_path / "cat.png"]
