"""One message of the conversation: a line saying who and how, then the text as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.widget import Widget
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream

    from g3chat.core.types import AttachmentPart

STATUS_NOTES = {
    "partial": "stopped · partial",
    "error": "failed",
    "interrupted": "interrupted · saved up to here",  # its process was killed while it streamed
    "streaming": "still being written elsewhere",
}


class MessageView(Vertical, can_focus=True):
    """A stored message, or the answer being streamed (``message_id`` is None until it is saved)."""

    DEFAULT_CSS = """
    MessageView {
        height: auto;
        padding: 0 1;
        margin: 0;  /* the last Markdown block's own bottom margin separates messages */
        border-left: wide $primary 60%;
    }
    MessageView.-user { border-left: wide $secondary; background: $boost; }
    MessageView:focus { background: $primary 12%; }
    MessageView.-hit { border-left: wide $accent; }
    MessageView > .meta { height: 1; color: $text-muted; }
    MessageView.-partial > .meta, MessageView.-interrupted > .meta { color: $warning; }
    MessageView.-error > .meta { color: $error; }
    MessageView > .error-line { color: $error; }
    MessageView > Markdown { margin: 0; padding: 0; background: transparent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "screen.select_message(-1)", "Previous", show=False),
        Binding("down,j", "screen.select_message(1)", "Next", show=False),
        Binding("e,enter", "screen.edit_message", "Edit", show=False),
        Binding("c", "screen.copy_message", "Copy", show=False),
        Binding("y", "screen.copy_code", "Copy code", show=False),
        Binding("left", "screen.branch_prev", "Prev branch", show=False),
        Binding("right", "screen.branch_next", "Next branch", show=False),
    ]

    def __init__(
        self,
        role: str,
        text: str = "",
        *,
        message_id: int | None = None,
        status: str = "complete",
        label: str | None = None,
        branch: tuple[int, int] | None = None,
        error: str | None = None,
        pending: str | None = None,
        attachments: Sequence[AttachmentPart] = (),
    ) -> None:
        super().__init__(classes=f"-{role}")
        self.role = role
        self.text = text
        self.message_id = message_id
        self.status = status
        self.label = label or ("You" if role == "user" else "Assistant")
        self.branch = branch
        self.error = error
        self.pending = pending  # e.g. "waiting for the model", "thinking", shown until text arrives
        self.attachments = list(attachments)
        self.blocks: list[Widget] = []  # shown under the text: the tool calls this answer made
        self._stream: MarkdownStream | None = None
        self.set_class(status in ("partial", "error", "interrupted"), f"-{status}")

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # Markdown pulls in markdown-it and Pygments: not at start-up

        yield Static(self._meta_text(), classes="meta", markup=False)
        if self.attachments:
            from g3chat.tui.widgets.sent_attachments import SentAttachments

            yield SentAttachments(self.attachments)
        yield Markdown(self.text)
        yield from self.blocks
        if self.error:
            yield Static(self.error, classes="error-line", markup=False)

    # ---------------------------------------------------------------------------------------- state

    def _meta_text(self) -> str:
        parts = [self.label]
        if self.pending:
            parts.append(self.pending)
        elif self.status in STATUS_NOTES:
            parts.append(STATUS_NOTES[self.status])
        if self.branch is not None:
            parts.append(f"‹ {self.branch[0]}/{self.branch[1]} ›")
        return " · ".join(parts)

    def refresh_meta(self) -> None:
        for meta in self.query_children(".meta").results(Static):
            meta.update(self._meta_text())

    def set_pending(self, note: str | None) -> None:
        self.pending = note
        self.refresh_meta()

    def set_status(self, status: str, error: str | None = None) -> None:
        self.status = status
        self.error = error
        for name in ("partial", "error", "interrupted"):
            self.set_class(status == name, f"-{name}")
        lines = list(self.query_children(".error-line").results(Static))
        for line in lines:
            line.update(error or "")
        if not lines and error and self.is_attached:
            self.mount(Static(error, classes="error-line", markup=False))
        self.refresh_meta()

    @property
    def markdown(self) -> Markdown:
        from textual.widgets import Markdown

        return self.query_one(Markdown)

    # ------------------------------------------------------------------------------------ streaming

    def begin_stream(self) -> None:
        self._stream = self.markdown.get_stream(self.markdown)

    async def write(self, text: str) -> None:
        if not text:
            return
        if self.pending:
            self.set_pending(None)
        self.text += text
        if self._stream is None:
            self.begin_stream()
        assert self._stream is not None
        await self._stream.write(text)

    async def stop_stream(self) -> None:
        """Stop streaming without a final render (the view is going away)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()

    async def end_stream(self, text: str) -> None:
        """Stop streaming, then render the whole answer once (an unclosed code fence loses nothing)."""
        try:
            if self._stream is not None:
                await self._stream.stop()
        finally:
            self._stream = None
            self.text = text
            self.pending = None
            await self.markdown.update(text)
            self.refresh_meta()
