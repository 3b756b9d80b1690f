"""What goes with the next message, above the message box: chips (removable), image previews, and the
microphone's record toggle with its live level meter while recording. Hidden while empty.

The tray owns attaching: ``/image PATH``-style commands and typed or pasted paths (:meth:`take_commands`),
``@path`` mentions in the message being sent (:meth:`take_mentions`, confined to ``roots``; :meth:`suggest`
completes them in the message box), the file picker, and the microphone. Files are prepared and stored
(``g3chat.core.media``) in a thread, so a video being sampled never freezes the window; a file that cannot
be attached is one notification and nothing is stored. What the loaded model can do with a file (why it
cannot take it, what a video's frames cost) is asked of ``advise`` as the file is attached, before anything
else can use the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widgets import Static

from g3chat.core.errors import G3ChatError
from g3chat.core.media.attach import AttachRequest, attach, parse_command, pasted_path
from g3chat.core.media.mic import Level, Recorder
from g3chat.core.media.store import MediaStore
from g3chat.core.media.textfile import DEFAULT_MAX_CHARS
from g3chat.core.mentions import attach_mentions, roots_for, suggestion
from g3chat.core.tools.confine import Roots
from g3chat.core.types import AttachmentPart
from g3chat.tui.widgets.attachment_chips import AttachmentChips
from g3chat.tui.widgets.attachment_previews import AttachmentPreviews
from g3chat.tui.widgets.record_toggle import RecordToggle

if TYPE_CHECKING:
    from g3chat.core.engine.listening import Listener

MIC_MAX_S = 60.0  # a recording stops by itself after this long ...
MIC_SILENCE_S = 2.0  # ... or after this much silence once speech was heard


# What to tell the person about files just attached: (text, severity), or None.
Advise = Callable[[Sequence[AttachmentPart]], "tuple[str, SeverityLevel] | None"]
# Hearing while recording (g3chat/tui/live_hearing.py): start(the tray's attachments) -> the listener that
# takes the recording's sample blocks and pauses, or None; stop(the stored clip, or None when there is none).
ListenStart = Callable[[Sequence[AttachmentPart]], "Listener | None"]
ListenStop = Callable[["AttachmentPart | None"], None]


def chat_recorder(
    on_level: Callable[[Level], None],
    on_block: Callable[[Any], None] | None = None,
    on_pause: Callable[[int | None], None] | None = None,
) -> Recorder:
    return Recorder(
        max_seconds=MIC_MAX_S,
        silence_s=MIC_SILENCE_S,
        on_level=on_level,
        on_block=on_block,
        on_pause=on_pause,
    )


@dataclass(frozen=True)
class Taken:
    """What :meth:`AttachmentTray.take_commands` left of a message: the text still to send (None: nothing
    to send), and whether attaching failed (the message box should get the typed text back to fix it)."""

    text: str | None
    failed: bool = False


class AttachmentTray(Vertical):
    DEFAULT_CSS = """
    AttachmentTray { height: auto; margin: 0 0 0 1; padding: 0 1; border-top: solid $primary 30%; }
    AttachmentTray.-empty { display: none; }
    AttachmentTray > #recorder { height: 1; }
    AttachmentTray > #recorder.-idle { display: none; }
    AttachmentTray #record-hint { width: 1fr; color: $text-muted; padding: 0 1; }
    """

    @dataclass(eq=False)
    class Changed(Message):
        """What goes with the next message changed (added, removed, sent)."""

        tray: AttachmentTray

        @property
        def control(self) -> AttachmentTray:
            return self.tray

    @dataclass(eq=False)
    class PickerClosed(Message):
        """The file picker was closed (with a file or not): the message box may take the focus back."""

    def __init__(
        self,
        media: MediaStore,
        advise: Advise | None = None,
        *,
        roots: Roots | None = None,
        at_file_chars: int = DEFAULT_MAX_CHARS,
        listen: tuple[ListenStart, ListenStop] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="-empty")
        self.media = media
        self.advise = advise
        self.roots = roots or roots_for()  # where @path may read: the working folder and tools.roots
        self.at_file_chars = at_file_chars
        self.listen = listen
        self._listener: Listener | None = None  # while a recording is heard
        self.record_hint = ""
        self.picker_folder: Path | None = None  # where the picker opens next: the last file's folder

    def compose(self) -> ComposeResult:
        yield AttachmentChips(id="chips")
        yield AttachmentPreviews(id="previews")
        with Horizontal(id="recorder", classes="-idle"):
            yield RecordToggle(self._recorder, id="record")
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
        if not self.toggle.recording and self.listen is not None and self._listener is None:
            self._listener = self.listen[0](self.attachments)  # the model hears it while it is made
        self.toggle.action_toggle()
        self._update()

    def _recorder(self, on_level: Callable[[Level], None]) -> Recorder:
        return chat_recorder(on_level, self._block, self._pause)

    def _block(self, block: Any) -> None:
        listener = self._listener  # read once: the recording thread calls this
        if listener is not None:
            listener.feed(block)

    def _pause(self, end: int | None) -> None:
        listener = self._listener
        if listener is not None:
            listener.expect_end(end)

    def _heard(self, part: AttachmentPart | None) -> None:
        if self._listener is not None and self.listen is not None:
            self._listener = None
            self.listen[1](part)

    # -------------------------------------------------------------------------------------- attaching

    async def take_commands(self, text: str) -> Taken:
        """Attach what ``text`` asks for, and say what is left to send.

        ``/image PATH`` (``/audio``, ``/video``, ``/attach``) on the first line attaches that file and
        sends the lines after it, if any; a message that is just an existing media file's path attaches it.
        """
        first, _, rest = text.strip().partition("\n")
        try:
            request = parse_command(first)
        except G3ChatError as exc:
            self._failed(str(exc))
            return Taken(None, failed=True)
        if request is None:
            request, rest = pasted_path(text), ""
            if request is None:
                return Taken(text)
        if not await self.attach(request):
            return Taken(None, failed=True)
        return Taken(rest if rest.strip() else None)

    async def attach(self, request: AttachRequest) -> bool:
        """Prepare and store the file in a thread, then show it as a chip; False (and a notification)
        when it cannot be attached."""
        try:
            parts = await asyncio.to_thread(attach, self.media, request)
        except G3ChatError as exc:
            self._failed(str(exc))
            return False
        except OSError as exc:
            self._failed(f"{request.path}: {exc.strerror or exc}")
            return False
        self._add(parts)
        return True

    async def take_mentions(self, text: str) -> bool:
        """Attach the files ``@path`` names in ``text`` (in a thread), as chips, and say when a text file
        was cut; False (one notification, nothing attached) when one is outside ``roots`` or unusable."""
        if "@" not in text:
            return True
        try:
            found = await asyncio.to_thread(
                attach_mentions, self.media, text, self.roots, max_chars=self.at_file_chars
            )
        except G3ChatError as exc:
            self._failed(str(exc))
            return False
        except OSError as exc:
            self._failed(str(exc))
            return False
        if found.parts:
            self._add(found.parts)
        for notice in found.notices:
            self.notify(notice, severity="warning", markup=False, timeout=10)
        return True

    def suggest(self, before: str) -> str:
        """The completion of the ``@path`` that ``before`` (the text before the cursor) ends in."""
        return suggestion(before, self.roots)

    def open_picker(self) -> None:
        """The file picker; the chosen file is attached."""
        from g3chat.tui.screens.attach_screen import AttachScreen

        async def done(path: Path | None) -> None:
            if path is not None:
                self.picker_folder = path.parent
                await self.attach(AttachRequest(None, path))
            self.post_message(self.PickerClosed())

        self.app.push_screen(AttachScreen(self.picker_folder or Path.cwd()), done)

    def _add(self, parts: list[AttachmentPart]) -> None:
        self.chips.add(parts)
        note = self.advise(parts) if self.advise is not None else None
        if note is not None:
            text, severity = note
            timeout = 12 if severity == "warning" else self.app.NOTIFICATION_TIMEOUT
            self.notify(text, severity=severity, markup=False, timeout=timeout)

    def _failed(self, error: str) -> None:
        self.notify(error, title="Not attached", severity="error", markup=False, timeout=8)

    # ------------------------------------------------------------------------------------- display

    async def on_attachment_chips_changed(self, event: AttachmentChips.Changed) -> None:
        # The tray's own message goes up in its place: a message the chips post while the tray is handling
        # something (a recording) would stop here, Textual ending a bubble at the widget that caused it.
        event.stop()
        await self.query_one(AttachmentPreviews).show(self.chips.attachments)
        self._update()
        self.post_message(self.Changed(self))

    def on_record_toggle_recorded(self, event: RecordToggle.Recorded) -> None:
        from g3chat.core.media.audio import audio_part

        event.stop()
        self._update()
        recording = event.recording
        if len(recording.samples) == 0:
            self._heard(None)
            self.notify("Nothing was recorded.", severity="warning")
            return
        name = f"recording-{datetime.now().strftime('%Y%m%d-%H%M%S')}.wav"
        try:
            part = audio_part(self.media, recording.samples, name, recording.rate)
        except OSError as exc:
            self._heard(None)
            self.notify(f"The recording could not be saved: {exc}", severity="error", markup=False)
            return
        self._heard(part)
        why = {"key": "stopped", "time": "time limit", "silence": "silence"}[recording.stopped_by]
        self.notify(f"Recorded {recording.duration_s:.1f} s ({why}).", markup=False)
        self._add([part])

    def on_record_toggle_failed(self, event: RecordToggle.Failed) -> None:
        event.stop()
        self._heard(None)
        self._update()
        self.notify(event.error, title="Microphone", severity="error", markup=False, timeout=15)

    def _update(self) -> None:
        recording = self.toggle.recording
        self.query_one("#recorder").set_class(not recording, "-idle")
        self.set_class(not recording and not self.chips.attachments, "-empty")
