"""Chips for the attachments of the message being written (each can be removed before sending), and the
same chips, read-only, on a sent message."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Static

from g3chat.core.media.attach import describe
from g3chat.core.types import AttachmentPart


def group_key(part: AttachmentPart) -> str:
    """Frames of one video share a chip; every other attachment has its own."""
    return f"video:{part.source}" if part.source is not None else f"{part.kind}:{part.sha256}"


class AttachmentChip(Horizontal):
    DEFAULT_CSS = """
    AttachmentChip {
        width: auto;
        height: 1;
        margin-right: 1;
        background: $boost;
    }
    AttachmentChip > Static { width: auto; padding: 0 1; }
    AttachmentChip > Button { min-width: 3; width: 3; height: 1; border: none; padding: 0; }
    """

    def __init__(self, parts: Sequence[AttachmentPart], key: str, *, removable: bool = True) -> None:
        super().__init__(classes=f"chip-{parts[0].kind}")
        self.parts = list(parts)
        self.key = key
        self.removable = removable

    @property
    def text(self) -> str:
        first = self.parts[0]
        if first.source is not None:
            return f"▶ {first.source} · {len(self.parts)} frames"
        icon = {"audio": "♪", "text_file": "≡"}.get(first.kind, "▣")
        label = f"{icon} {describe(first)}"
        if first.kind == "audio":
            try:
                from g3chat.core.media.preview import audio_strip

                label += f" {audio_strip(first.path, 12)}"
            except (OSError, EOFError, ValueError):
                pass  # the strip is decoration; a chip without it is still right
        return label

    def compose(self) -> ComposeResult:
        yield Static(self.text, classes="chip-label", markup=False)
        if self.removable:
            yield Button("✕", classes="chip-remove", tooltip="Remove this attachment", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(AttachmentChips.RemoveRequested(self.key))


class AttachmentChips(Horizontal):
    """The pending attachments. ``attachments`` is what to send; the chips are its view."""

    DEFAULT_CSS = """
    AttachmentChips { height: auto; width: 1fr; }
    AttachmentChips.-empty { display: none; }
    """

    class RemoveRequested(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class Changed(Message):
        """The pending attachments changed (added, removed or cleared)."""

        def __init__(self, chips: AttachmentChips) -> None:
            super().__init__()
            self.chips = chips

        @property
        def control(self) -> AttachmentChips:
            return self.chips

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-empty")
        self._groups: dict[str, list[AttachmentPart]] = {}

    @property
    def attachments(self) -> list[AttachmentPart]:
        return [part for parts in self._groups.values() for part in parts]

    def add(self, parts: Sequence[AttachmentPart]) -> None:
        added: dict[str, list[AttachmentPart]] = {}
        for part in parts:
            key = group_key(part)
            if key in self._groups and part.source is None:
                continue  # the same file attached twice is one attachment
            added.setdefault(key, []).append(part)
        for key, group in added.items():
            if key in self._groups:
                self._groups[key].extend(group)
                self.query_one(f"#{_dom_id(key)}", AttachmentChip).parts = self._groups[key]
            else:
                self._groups[key] = group
                chip = AttachmentChip(group, key)
                chip.id = _dom_id(key)
                self.mount(chip)
        self._changed()

    def drop(self, key: str) -> None:
        if self._groups.pop(key, None) is not None:
            for chip in self.query(AttachmentChip):
                if chip.key == key:
                    chip.remove()
            self._changed()

    def clear(self) -> None:
        self._groups.clear()
        self.remove_children()
        self._changed()

    def on_attachment_chips_remove_requested(self, event: RemoveRequested) -> None:
        event.stop()
        self.drop(event.key)

    def _changed(self) -> None:
        self.set_class(not self._groups, "-empty")
        self.post_message(self.Changed(self))


def grouped(parts: Sequence[AttachmentPart]) -> dict[str, list[AttachmentPart]]:
    """Attachments by chip, in order (a video's frames together)."""
    groups: dict[str, list[AttachmentPart]] = {}
    for part in parts:
        groups.setdefault(group_key(part), []).append(part)
    return groups


def _dom_id(key: str) -> str:
    import hashlib

    return "chip-" + hashlib.sha1(key.encode()).hexdigest()[:12]
