"""The chat screen's attachments: ``/image PATH``-style commands, typed or pasted paths, the file picker,
the microphone, and what the loaded model can do with them.

Files are prepared and stored (``g3chat.core.media``) in a thread, so a video being sampled never freezes
the window. A bad file is one notification and nothing is stored. What an attachment costs, or why the model
cannot take it, is asked of the engine only from this (the UI) thread while no worker is using the engine:
workers are started from this thread too, so nothing can start in between.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from g3chat.core.errors import G3ChatError
from g3chat.core.media import support
from g3chat.core.media.attach import AttachRequest, attach, parse_command, pasted_path
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart, Message, user
from g3chat.tui.widgets.attachment_chips import AttachmentChips
from g3chat.tui.widgets.attachment_tray import MIC_MAX_S, MIC_SILENCE_S, AttachmentTray
from g3chat.tui.widgets.prompt_input import PromptInput
from g3chat.tui.widgets.record_toggle import RecordToggle

if TYPE_CHECKING:
    from g3chat.tui.screens.chat_screen import ChatScreen

    _Base = ChatScreen
else:
    _Base = object


def attachments_title(parts: list[AttachmentPart]) -> str:
    """A title for a conversation that starts with attachments alone: their names."""
    from g3chat.core.chat import title_for

    return title_for(", ".join(dict.fromkeys(p.source or p.name for p in parts)))


class AttachActions(_Base):
    # ---------------------------------------------------------------------------------------- state

    @property
    def tray(self) -> AttachmentTray:
        return self.query_one(AttachmentTray)

    @property
    def media_store(self) -> MediaStore:
        return MediaStore(self.g3.paths.media_dir())

    def _fresh(self) -> set[int]:
        """Sent messages with attachments whose first answer has not started (notes are due then)."""
        fresh: set[int] | None = getattr(self, "_fresh_media", None)
        if fresh is None:
            fresh = self._fresh_media = set[int]()
        return fresh

    def _key_for(self, action: str) -> str:
        for binding in (b.binding for b in self.active_bindings.values()):
            if binding.action == action:
                return self.app.get_key_display(binding)
        return action

    # -------------------------------------------------------------------------------------- attaching

    async def take_attach_commands(self, text: str) -> str | None:
        """Attach what ``text`` asks for; return the text still to send (None: nothing to send).

        ``/image PATH`` (``/audio``, ``/video``, ``/attach``) on the first line attaches that file and
        sends the lines after it, if any; a message that is just an existing media file's path attaches it.
        """
        first, _, rest = text.strip().partition("\n")
        try:
            request = parse_command(first)
        except G3ChatError as exc:
            self._attach_failed(str(exc), text)
            return None
        if request is None:
            request, rest = pasted_path(text), ""
            if request is None:
                return text
        if not await self.attach_request(request):
            self.prompt.text = self.prompt.text or text  # keep what was typed, to fix the path
            return None
        return rest if rest.strip() else None

    async def attach_request(self, request: AttachRequest) -> bool:
        """Prepare and store the file in a thread, then show it as a chip; False (and a notification)
        when it cannot be attached."""
        try:
            parts = await asyncio.to_thread(attach, self.media_store, request)
        except G3ChatError as exc:
            self._attach_failed(str(exc))
            return False
        except OSError as exc:
            self._attach_failed(f"{request.path}: {exc.strerror or exc}")
            return False
        self.tray.add(parts)
        self._announce_pending(parts)
        return True

    def _attach_failed(self, error: str, text: str | None = None) -> None:
        self.notify(error, title="Not attached", severity="error", markup=False, timeout=8)
        if text is not None and not self.prompt.text:
            self.prompt.text = text

    def _announce_pending(self, parts: list[AttachmentPart]) -> None:
        """Say now, when the model is loaded, why it cannot take these; else what a video's frames cost."""
        frames = [p for p in parts if p.source is not None]
        if self.g3.model_state == "ready" and self.g3.engine is not None:
            problem = self.media_problem(parts)
            if problem is not None:
                self.notify(problem, severity="warning", markup=False, timeout=12)
                return
        if not frames:
            return
        cost = self.frames_cost(frames) if self._engine_free() else None
        source = frames[0].source
        if cost is None:
            self.notify(f"{source}: {len(frames)} frames; their token cost is shown when the answer starts")
        else:
            self.notify(f"{cost} (sent with your next message)", markup=False)

    def _engine_free(self) -> bool:
        g3 = self.g3
        return (
            g3.model_state == "ready" and g3.engine is not None and g3.job is None and g3.engine_idle.is_set()
        )

    def media_problem(self, parts: list[AttachmentPart]) -> str | None:
        """Why the loaded model cannot take some of ``parts`` (a flag check: safe while it answers)."""
        found = support.problems(self.g3.engine, parts)
        return support.explain(found) if found else None

    def frames_cost(self, frames: list[AttachmentPart], history: list[Message] | None = None) -> str:
        """``clip.mp4: 8 frames, 2,048 prompt tokens`` (asks the engine: only while it is free)."""
        if history is None:
            cid = self.conversation_id
            history = self.g3.store.history(cid) if cid is not None else []
        cost = support.token_cost(self.g3.engine, history, user("", frames))
        sources = ", ".join(dict.fromkeys(p.source or "" for p in frames))
        return f"{sources}: {len(frames)} frames, {cost:,} prompt tokens"

    # ------------------------------------------------------------------------------------ sending

    def sent_with_attachments(self, message_id: int) -> None:
        self._fresh().add(message_id)

    def media_notes(self, conversation_id: int) -> list[str]:
        """Called as an answer starts (the engine is loaded and free): notes on the message it answers."""
        fresh = self._fresh()
        path = self.g3.store.messages(conversation_id)
        if not path or path[-1].id not in fresh:
            return []
        fresh.discard(path[-1].id)
        parts = list(path[-1].to_message().attachments)
        problem = self.media_problem(parts)
        if problem is not None:
            return [f"⚠ {problem}"]
        frames = [p for p in parts if p.source is not None]
        if not frames:
            return []
        return [f"ⓘ {self.frames_cost(frames, [m.to_message() for m in path[:-1]])}"]

    # ------------------------------------------------------------------------------------- actions

    def action_attach_file(self) -> None:
        from g3chat.tui.screens.attach_screen import AttachScreen

        async def done(path: Path | None) -> None:
            if path is not None:
                self._picker_folder = path.parent
                await self.attach_request(AttachRequest(None, path))
            self.prompt.focus()

        folder = getattr(self, "_picker_folder", None) or Path.cwd()
        self.app.push_screen(AttachScreen(folder), done)

    def action_record(self) -> None:
        key = self._key_for("record")
        hint = (
            f"recording · {key} stops (or {MIC_SILENCE_S:.0f} s of silence after you speak, "
            f"or {MIC_MAX_S:.0f} s)"
        )
        self.tray.toggle_recording(hint)

    async def on_prompt_input_file_pasted(self, event: PromptInput.FilePasted) -> None:
        await self.attach_request(event.request)

    def on_attachment_chips_changed(self, event: AttachmentChips.Changed) -> None:
        self.prompt.allow_empty = bool(event.chips.attachments)

    def on_record_toggle_recorded(self, event: RecordToggle.Recorded) -> None:
        from datetime import datetime

        from g3chat.core.media.audio import audio_part

        recording = event.recording
        if len(recording.samples) == 0:
            self.notify("Nothing was recorded.", severity="warning")
            return
        name = f"recording-{datetime.now().strftime('%Y%m%d-%H%M%S')}.wav"
        try:
            part = audio_part(self.media_store, recording.samples, name, recording.rate)
        except OSError as exc:
            self.notify(f"The recording could not be saved: {exc}", severity="error", markup=False)
            return
        self.tray.add([part])
        why = {"key": "stopped", "time": "time limit", "silence": "silence"}[recording.stopped_by]
        self.notify(f"Recorded {recording.duration_s:.1f} s ({why}).", markup=False)
        self._announce_pending([part])

    def on_record_toggle_failed(self, event: RecordToggle.Failed) -> None:
        self.notify(event.error, title="Microphone", severity="error", markup=False, timeout=15)
