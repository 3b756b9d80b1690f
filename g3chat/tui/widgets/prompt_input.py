"""The message box: multi-line; Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it)
inserts a line break, Ctrl+E opens the message in the user's editor and puts back what was saved. A paste
that is exactly one existing media file (what dropping a file on a terminal types) becomes an attachment
instead of text. While an ``@path`` is being typed, the rest of the path shows greyed after the cursor
(TextArea's ``suggestion``); Tab or → takes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from g3chat.core.media.attach import AttachRequest, pasted_path
from g3chat.tui.keys import INPUT_ACTIONS, bindings


class PromptInput(TextArea):
    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 12; border: tall $primary 40%; }
    PromptInput:focus { border: tall $primary; }
    """

    BINDINGS = bindings(INPUT_ACTIONS)

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class FilePasted(Message):
        def __init__(self, request: AttachRequest) -> None:
            super().__init__()
            self.request = request

    allow_empty = False  # Enter sends an empty message (set while attachments are waiting to go)
    # The text before the cursor → what completes the @path it ends in ("" for none); the screen sets it.
    complete_path: Callable[[str], str] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            soft_wrap=True,
            placeholder="Message · Enter sends · Ctrl+J new line",
            **kwargs,
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
        elif event.key == "tab" and self.suggestion:
            event.stop()
            event.prevent_default()
            self.insert(self.suggestion)

    def update_suggestion(self) -> None:
        """The completion of the ``@path`` before the cursor, when the cursor ends a word."""
        start, end = self.selection
        if self.complete_path is None or start != end:
            self.suggestion = ""
            return
        row, column = end
        line = self.document.get_line(row)
        if "@" not in line[:column] or line[column : column + 1].strip():
            self.suggestion = ""
            return
        self.suggestion = self.complete_path(line[:column])

    def watch_selection(self) -> None:
        self.update_suggestion()  # the cursor moved: complete where it is now

    # Textual awaits a handler's result only when it is awaitable: a plain method may replace the async one.
    def _on_paste(self, event: events.Paste) -> None:  # type: ignore[override]
        # Runs before TextArea's own handler (Textual calls each class's in turn, unless prevented).
        request = pasted_path(event.text) if not self.read_only else None
        if request is None:
            return
        event.stop()
        event.prevent_default()
        self.post_message(self.FilePasted(request))

    def action_submit(self) -> None:
        text = self.text
        if not text.strip() and not self.allow_empty:
            return
        self.post_message(self.Submitted(text))
        self.clear()

    async def action_edit_in_editor(self) -> None:
        from g3chat.tui.editor import edit_in_editor

        if self.read_only:
            return
        edited = await edit_in_editor(self.app, self.text)
        if edited is not None:
            self.load_text(edited)
            self.move_cursor(self.document.end)
        self.focus()

    def action_newline(self) -> None:
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)
