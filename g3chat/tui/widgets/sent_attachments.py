"""The attachments of a sent message, in the chat: read-only chips and image previews."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from g3chat.core.types import AttachmentPart
from g3chat.tui.widgets.attachment_chips import AttachmentChip, grouped
from g3chat.tui.widgets.attachment_previews import AttachmentPreviews


class SentAttachments(Vertical):
    DEFAULT_CSS = """
    SentAttachments { height: auto; margin: 0 0 1 0; }
    SentAttachments > Horizontal { height: auto; }
    """

    def __init__(self, parts: Sequence[AttachmentPart]) -> None:
        super().__init__()
        self.parts = list(parts)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="chips"):
            for key, group in grouped(self.parts).items():
                yield AttachmentChip(group, key, removable=False)
        yield AttachmentPreviews(self.parts)

    @property
    def labels(self) -> list[str]:
        return [chip.text for chip in self.query(AttachmentChip)]
