"""What goes with the next message, above the message box: chips (removable), image previews, and the
microphone's record toggle with its live level meter while recording. Hidden while empty."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from g3chat.core.media.mic import Level, Recorder
from g3chat.core.types import AttachmentPart
from g3chat.tui.widgets.attachment_chips import AttachmentChips
from g3chat.tui.widgets.attachment_previews import AttachmentPreviews
from g3chat.tui.widgets.record_toggle import RecordToggle

MIC_MAX_S = 60.0  # a recording stops by itself after this long ...
MIC_SILENCE_S = 2.0  # ... or after this much silence once speech was heard


def chat_recorder(on_level: Callable[[Level], None]) -> Recorder:
    return Recorder(max_seconds=MIC_MAX_S, silence_s=MIC_SILENCE_S, on_level=on_level)


class AttachmentTray(Vertical):
    DEFAULT_CSS = """
    AttachmentTray { height: auto; margin: 0 0 0 1; padding: 0 1; border-top: solid $primary 30%; }
    AttachmentTray.-empty { display: none; }
    AttachmentTray > #recorder { height: 1; }
    AttachmentTray > #recorder.-idle { display: none; }
    AttachmentTray #record-hint { width: 1fr; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-empty")
        self.record_hint = ""

    def compose(self) -> ComposeResult:
        yield AttachmentChips(id="chips")
        yield AttachmentPreviews(id="previews")
        with Horizontal(id="recorder", classes="-idle"):
            yield RecordToggle(chat_recorder, id="record")
            yield Static("", id="record-hint", markup=False)

    @property
    def chips(self) -> AttachmentChips:
        return self.query_one(AttachmentChips)

    @property
    def toggle(self) -> RecordToggle:
        return self.query_one(RecordToggle)

    @property
    def attachments(self) -> list[AttachmentPart]:
        return self.chips.attachments

    @property
    def recording(self) -> bool:
        return self.toggle.recording

    def add(self, parts: Sequence[AttachmentPart]) -> None:
        self.chips.add(parts)

    def take(self) -> list[AttachmentPart]:
        """The attachments for the message being sent; the tray is emptied."""
        parts = self.chips.attachments
        if parts:
            self.chips.clear()
        return parts

    def toggle_recording(self, hint: str = "") -> None:
        """Start recording (showing ``hint`` beside the meter), or stop the recording in progress."""
        self.record_hint = hint
        self.query_one("#record-hint", Static).update(hint)
        self.toggle.action_toggle()
        self._update()

    async def on_attachment_chips_changed(self, event: AttachmentChips.Changed) -> None:
        await self.query_one(AttachmentPreviews).show(self.chips.attachments)
        self._update()  # the event goes on to the screen

    def on_record_toggle_recorded(self) -> None:
        self._update()  # the event goes on to the screen, which stores the clip

    def on_record_toggle_failed(self) -> None:
        self._update()

    def _update(self) -> None:
        recording = self.toggle.recording
        self.query_one("#recorder").set_class(not recording, "-idle")
        self.set_class(not recording and not self.chips.attachments, "-empty")
