"""Inline previews of a message's images (half-block pixels): each image, and the first frame of a video."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal

from g3chat.core.types import AttachmentPart
from g3chat.tui.widgets.attachment_chips import grouped
from g3chat.tui.widgets.image_preview import ImagePreview

MAX_PREVIEWS = 4


def previewable(parts: Sequence[AttachmentPart]) -> list[AttachmentPart]:
    """The images worth a preview: every image attached, a video's first frame; at most MAX_PREVIEWS."""
    firsts = [group[0] for group in grouped(parts).values() if group[0].kind == "image"]
    return firsts[:MAX_PREVIEWS]


class AttachmentPreviews(Horizontal):
    DEFAULT_CSS = """
    AttachmentPreviews { height: auto; width: 1fr; }
    AttachmentPreviews.-empty { display: none; }
    AttachmentPreviews > ImagePreview { width: 24; height: 6; margin: 0 1 0 0; }
    """

    def __init__(self, parts: Sequence[AttachmentPart] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown = previewable(parts)
        self.set_class(not self.shown, "-empty")

    def compose(self) -> ComposeResult:
        for part in self.shown:
            yield ImagePreview(part.path, classes="preview")

    async def show(self, parts: Sequence[AttachmentPart]) -> None:
        """Preview these attachments instead (only what changed is redrawn)."""
        wanted = previewable(parts)
        if [p.path for p in wanted] == [p.path for p in self.shown]:
            return
        self.shown = wanted
        self.set_class(not wanted, "-empty")
        await self.remove_children()
        await self.mount_all(ImagePreview(part.path, classes="preview") for part in wanted)
